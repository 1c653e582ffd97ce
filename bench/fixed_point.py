"""Measured error of the engine against float64 for several fixed-point precisions.

    python -m bench.fixed_point [--out FILE]

Inputs are float64 (not pre-rounded), so the error includes encoding.  For
each f: max abs error of an elementwise product (values ~ N(0, 10^2)), of a
BERT-sized matmul (activations ~ N(0, 1), weights ~ N(0, 0.05^2), inner
dimension 768, 3072 for the FFN's second matmul) with secret and with public
weights, and the largest product magnitude the truncation accepts.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from secptune.engine import Context, EngineConfig, SharedTensor

from .common import git_commit, table, write_jsonl


def measure(f: int, rows: int) -> dict:
    ctx = Context(EngineConfig(seed=f, frac_bits=f))
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=20000) * 10, rng.normal(size=20000) * 10
    mul_err = np.abs((SharedTensor.from_client(ctx, u) * SharedTensor.from_client(ctx, v)).reveal("e") - u * v).max()
    out = {"frac_bits": f, "ulp": ctx.fixed.ulp, "mul_max_abs_err": float(mul_err)}
    for k in (768, 3072):
        a = rng.normal(size=(rows, k))
        w = rng.normal(size=(k, 768)) * 0.05
        xa = SharedTensor.from_client(ctx, a)
        ref = a @ w
        out[f"matmul{k}_ss_max_abs_err"] = float(np.abs((xa @ SharedTensor.from_client(ctx, w)).reveal("e") - ref).max())
        out[f"matmul{k}_sp_max_abs_err"] = float(np.abs((xa @ w).reveal("e") - ref).max())
    out["max_product"] = ctx.fixed.max_product
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fixed_point")
    p.add_argument("--out")
    p.add_argument("--rows", type=int, default=32)
    args = p.parse_args(argv)
    rows = [measure(f, args.rows) for f in (12, 14, 16, 18, 20, 22)]
    for r in rows:
        r["commit"] = git_commit()
    print(table(rows, [
        ("frac_bits", "f", "{}"),
        ("ulp", "ulp", "{:.2e}"),
        ("mul_max_abs_err", "mul err", "{:.2e}"),
        ("matmul768_ss_max_abs_err", "matmul768 ss", "{:.2e}"),
        ("matmul768_sp_max_abs_err", "matmul768 sp", "{:.2e}"),
        ("matmul3072_ss_max_abs_err", "matmul3072 ss", "{:.2e}"),
        ("max_product", "max |x*y|", "{:.2e}"),
    ]))
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
