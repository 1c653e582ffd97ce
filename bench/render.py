"""Render benchmark JSON lines as a Markdown table.

    python -m bench.render bench/results/ops.jsonl
"""

from __future__ import annotations

import json
import sys


def render_ops(rows: list) -> str:
    out = [
        "| op | shape | median s | float64 s | x float64 | rounds | B/elem/server | declared | max abs err | max rel err |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
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
        rel = r.get("max_rel_err")
        out.append(
            f"| {r['op']} | {'x'.join(map(str, r['shape']))} | {r['median_s']:.4f} | {r['ref_median_s']:.5f} "
            f"| {r['ratio']:.1f} | {r['rounds']} | {r['bytes_per_elem_party']:.2f} "
            f"| {'-' if decl is None else f'{decl:.2f}'} | {'-' if err is None else f'{err:.1e}'} "
            f"| {'-' if rel is None else f'{rel:.1e}'} |"
        )
    commit = rows[0].get("commit", "?") if rows else "?"
    return "\n".join(out + [""] + notes + ["", f"Measured at commit `{commit}`."])


def render_attention(rows: list) -> str:
    out = [
        "| dh | n | softmax s | RFA s (M) | time RFA/softmax | softmax B/server | RFA B/server | bytes RFA/softmax | rounds softmax / RFA |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sm = {(r["head_dim"], r["seq_len"]): r for r in rows if r["kind"] == "softmax"}
    for r in rows:
        if r["kind"] != "rfa":
            continue
        s = sm[(r["head_dim"], r["seq_len"])]
        out.append(
            f"| {r['head_dim']} | {r['seq_len']} | {s['median_s']:.3f} | {r['median_s']:.3f} ({r['features']}) "
            f"| {r['median_s'] / s['median_s']:.2f} | {s['bytes_per_party'] / 1e6:.1f} M | {r['bytes_per_party'] / 1e6:.1f} M "
            f"| {r['bytes_per_party'] / s['bytes_per_party']:.2f} | {s['rounds']} / {r['rounds']} |"
        )
    return "\n".join(out + ["", f"Measured at commit `{rows[0].get('commit', '?')}`, 12 heads."])


def render_rfa(rows: list) -> str:
    out = ["| features M | map | orthogonal | median rel err | mean | p90 |", "|---|---|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['features']} | {r.get('feature_map') or '-'} | {r.get('orthogonal')} | {r['median_rel_err']:.3f} "
                   f"| {r['mean_rel_err']:.3f} | {r['p90_rel_err']:.3f} |")
    return "\n".join(out + ["", f"Measured at commit `{rows[0].get('commit', '?')}`."])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if rows and "kind" in rows[0]:
        print(render_attention(rows))
    elif rows and "median_rel_err" in rows[0]:
        print(render_rfa(rows))
    else:
        print(render_ops(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
