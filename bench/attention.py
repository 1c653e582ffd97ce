"""One attention layer on shares: softmax vs random-feature attention.

    python -m bench.attention [--quick] [--out FILE] [--features M] [--repeats R]

12 heads, head dim 32 and 64, sequence lengths 64, 128, 256, 512 (quick: 64
and 128, head dim 32), all three servers in one process.  Queries, keys and
values are shared before timing; the layer's attention (scores or features,
normalisation, weighted values) is timed.  One JSON line per (kind, heads,
head_dim, seq_len): median_s, rounds, bytes_per_party (max over servers, the
whole layer), and features for RFA.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.nn.attention import AttentionConfig, attention

from .common import git_commit, machine, table, timed, write_jsonl


def run(heads, dh, n, cfg: AttentionConfig, repeats: int) -> dict:
    ctx = Context(EngineConfig(seed=n + dh))
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(heads, n, dh)) * 0.5 for _ in range(3))
    mask = np.ones(n)
    mask[int(0.9 * n):] = 0                       # some padding, as a real batch has
    sq, sk, sv = (SharedTensor.from_client(ctx, a) for a in (q, k, v))
    med, lo, hi = timed(lambda: attention(sq, sk, sv, mask, cfg), repeats, warmup=1)
    with ctx.chan.measure() as m:
        out = attention(sq, sk, sv, mask, cfg)
    ref = attention(q, k, v, mask, cfg)
    err = float(np.abs(out.reveal("bench/attention") - ref).max())
    row = {
        "kind": cfg.kind, "heads": heads, "head_dim": dh, "seq_len": n,
        "median_s": med, "min_s": lo, "max_s": hi,
        "rounds": m.cost.rounds, "bytes_per_party": m.cost.max_server_bytes,
        "max_abs_err_vs_plaintext": err,
    }
    if cfg.kind == "rfa":
        row["features"] = cfg.features
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.attention", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    lengths = (64, 128) if args.quick else (64, 128, 256, 512)
    dims = (32,) if args.quick else (32, 64)
    rows = []
    for dh in dims:
        for n in lengths:
            sm = run(12, dh, n, AttentionConfig("softmax"), repeats)
            rf = run(12, dh, n, AttentionConfig("rfa", features=args.features), repeats)
            rf["time_ratio_vs_softmax"] = rf["median_s"] / sm["median_s"]
            rf["bytes_ratio_vs_softmax"] = rf["bytes_per_party"] / sm["bytes_per_party"]
            rows += [sm, rf]
            print(f"dh {dh} n {n}: softmax {sm['median_s']:.2f} s, rfa {rf['median_s']:.2f} s", flush=True)
    meta = {"commit": git_commit(), **machine()}
    for r in rows:
        r.update(meta)
    print(table(rows, [
        ("kind", "kind", "{}"), ("head_dim", "dh", "{}"), ("seq_len", "n", "{}"), ("features", "M", "{}"),
        ("median_s", "median s", "{:.3f}"), ("rounds", "rounds", "{}"),
        ("bytes_per_party", "MB/party", "{:.0f}"),
        ("time_ratio_vs_softmax", "time/softmax", "{:.2f}"), ("bytes_ratio_vs_softmax", "bytes/softmax", "{:.2f}"),
        ("max_abs_err_vs_plaintext", "err vs plain", "{:.1e}"),
    ]).replace("MB/party", "B/party"))
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
