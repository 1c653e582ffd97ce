"""Render benchmark JSON lines as a Markdown table.

    python -m bench.render bench/results/ops.jsonl
"""

from __future__ import annotations

import json
import sys


def render_ops(rows: list) -> str:
    out = [
        "| op | shape | median s | float64 s | x float64 | rounds | B/elem/server | declared | max abs err |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for r in rows:
        if r["op"] == "trunc_stress":
            notes.append(
                f"Truncation stress: {r['shape'][0]:,} truncations of values within 1/16 of the bound "
                f"({r['bound_ring']}): **{r['failures']} failures**, mean rounding error "
                f"{r['mean_rounding_error_ulp']:+.1e} ulp, {r['seconds']:.1f} s."
            )
            continue
        decl = r.get("declared_bytes_per_elem_party")
        err = r.get("max_abs_err")
        out.append(
            f"| {r['op']} | {'x'.join(map(str, r['shape']))} | {r['median_s']:.4f} | {r['ref_median_s']:.5f} "
            f"| {r['ratio']:.1f} | {r['rounds']} | {r['bytes_per_elem_party']:.2f} "
            f"| {'-' if decl is None else f'{decl:.2f}'} | {'-' if err is None else f'{err:.1e}'} |"
        )
    commit = rows[0].get("commit", "?") if rows else "?"
    return "\n".join(out + [""] + notes + ["", f"Measured at commit `{commit}`."])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print(render_ops(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
