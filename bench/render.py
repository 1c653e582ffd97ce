"""Render benchmark JSON lines as Markdown tables.

    python -m bench.render bench/results/ops.jsonl         # print one table
    python -m bench.render --refresh README.md docs/*.md   # rewrite the marked result blocks
"""

from __future__ import annotations

import json
import statistics
import sys


def render_ops(rows: list) -> str:
    out = [
        "| op | shape | median s | float64 s | x float64 | x 2 ReLU | rounds | B/elem/server | declared | max abs err "
        "| max rel err |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
        x2 = r.get("x_2relu")          # timed in alternation with ReLU (functions only)
        out.append(
            f"| {r['op']} | {'x'.join(map(str, r['shape']))} | {r['median_s']:.4f} | {r['ref_median_s']:.5f} "
            f"| {r['ratio']:.1f} | {'-' if x2 is None else f'{x2:.2f}'} | {r['rounds']} | {r['bytes_per_elem_party']:.2f} "
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
        fmap = (r.get("feature_map") or "-") + (", centred keys" if r.get("centre_keys") else "")
        out.append(f"| {r['features']} | {fmap} | {r.get('orthogonal')} | {r['median_rel_err']:.3f} "
                   f"| {r['mean_rel_err']:.3f} | {r['p90_rel_err']:.3f} |")
    return "\n".join(out + ["", f"Measured at commit `{rows[0].get('commit', '?')}`."])


def render_rfa_layers(rows: list) -> str:
    """One row per attention setting, one column pair (metric, difference from softmax) per task."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    base = {r["task"]: r["zero_shot_metric"] for r in rows if r["kind"] == "softmax"}
    out = ["| attention | " + " | ".join(f"{t} ({rows[[r['task'] for r in rows].index(t)]['metric']}) | vs softmax"
                                         for t in tasks) + " |",
           "|---|" + "---:|---:|" * len(tasks)]
    for cfg in dict.fromkeys(r["config"] for r in rows):
        cells = []
        for t in tasks:
            r = next((r for r in rows if r["config"] == cfg and r["task"] == t), None)
            if r is None:
                cells += ["-", "-"]
                continue
            m = 100 * r["zero_shot_metric"]
            each = r.get("zero_shot_metrics") or []
            spread = f" +- {100 * statistics.pstdev(each):.1f}" if len(each) > 1 else ""
            cells += [f"{m:.1f}{spread}", "-" if r["kind"] == "softmax" else f"{m - 100 * base[t]:+.1f}"]
        out.append(f"| {cfg} | " + " | ".join(cells) + " |")
    n = ", ".join(f"{t} {next(r['test_examples'] for r in rows if r['task'] == t)}" for t in tasks)
    seeds = max(r.get("seeds", 1) for r in rows)
    note = f"; RFA: mean +- std over projection seeds 0-{seeds - 1}" if seeds > 1 else ""
    return "\n".join(out + ["", f"The untuned template, split {rows[0]['split']}, test examples: {n}{note}; "
                             f"commit `{rows[0].get('commit', '?')}`."])


def render_encoder(rows: list) -> str:
    out = ["| mode | weights | attention | seconds | x plain float32 | rounds | bytes per server | max abs err (pooled) |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        err = r.get("max_abs_err")
        out.append(f"| {r['mode']} | {r['weights']} | {r['attention']} | {r['median_s']:.2f} | {r['ratio_to_plain']:.0f} "
                   f"| {r['rounds']} | {r['bytes_per_party'] / 1e9:.2f} GB | {'-' if err is None else f'{err:.1e}'} |")
    return "\n".join(out + ["", f"Batch {rows[0]['batch']} x {rows[0]['seq_len']} tokens; measured at commit "
                             f"`{rows[0].get('commit', '?')}`."])


def render_fidelity(rows: list) -> str:
    out = ["| attention | sentences | pooled max abs err | pooled mean abs err | anchor argmax agreement |",
           "|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['attention']} | {r['sentences']} | {r['pooled_max_abs_err']:.2e} "
                   f"| {r['pooled_mean_abs_err']:.2e} | {100 * r['anchor_argmax_agreement']:.1f}% |")
    return "\n".join(out + ["", f"Measured at commit `{rows[0].get('commit', '?')}`."])


def _head(row: dict) -> str:
    """The run's embedding head (rows from before the pair head used the anchor head)."""
    return row.get("head") or "anchor"


def render_tune(rows: list) -> str:
    """Untuned and tuned test metric per task: each split's, then mean +- std over splits
    (or over RFA projection seeds), with the command that reproduces the table."""
    import numpy as np

    seeds = any(r.get("rfa_seed") for r in rows)        # runs that differ by RFA's projection seed
    over = "projection seeds" if seeds else "splits"
    key = (lambda x: f"seed {x.get('rfa_seed', 0)}") if seeds else (lambda x: x["split"])
    out = [f"| task | head | metric | test examples | untuned, per {over[:-1]} | untuned (mean +- std) "
           f"| tuned, per {over[:-1]} | tuned (mean +- std) | dev of the kept prompt |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for task, head in dict.fromkeys((r["task"], _head(r)) for r in rows):
        r = [x for x in rows if x["task"] == task and _head(x) == head]
        zs = np.array([x["zero_shot_metric"] for x in r]) * 100
        tu = np.array([x["test_metric"] for x in r]) * 100
        dv = np.array([x["dev_metric"] for x in r]) * 100
        per = lambda v: " / ".join(f"{a:.1f}" for a in v)        # noqa: E731
        out.append(f"| {task} | {head} | {r[0]['metric']} | {max(x['test_examples'] for x in r)} "
                   f"| {per(zs)} | {zs.mean():.1f} +- {zs.std():.1f} | {per(tu)} | {tu.mean():.1f} +- {tu.std():.1f} "
                   f"| {dv.mean():.1f} |")
    first = rows[0]
    order = ", ".join(dict.fromkeys(key(x) for x in rows))
    note = [f"Plaintext, {first['model_calls']} model calls per run; per-{over[:-1]} columns in the order {order}; "
            f"{_commits(rows)}."]
    if first.get("bench_command"):
        note.append(f"Reproduce: `{first['bench_command']}`; one run is, for example, `{first['command']}`.")
    return "\n".join(out + [""] + note)


def render_first_run(rows: list) -> str:
    """What the README's main job can show (``bench.first_run``): per setting, the means over
    seeds of the training loss, dev and test metric, untuned -> tuned, and each seed's gain."""
    import numpy as np

    out = ["| prompt length | sigma | model calls | seeds | training loss | dev | test | test gain per seed "
           "(points) | mean gain |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in dict.fromkeys((r["prompt_len"], r["sigma"], r["budget"]) for r in rows):
        r = [x for x in rows if (x["prompt_len"], x["sigma"], x["budget"]) == key]
        m = lambda k: float(np.mean([x[k] for x in r]))          # noqa: E731
        gains = np.array([100 * x["gain"] for x in r])
        out.append(f"| {key[0]} | {key[1]:g} | {key[2]} | {len(r)} | {m('untuned_train_loss'):.4f} -> "
                   f"{m('final_best_loss'):.4f} | {100 * m('untuned_dev'):.1f} -> {100 * m('dev'):.1f} "
                   f"| {100 * m('untuned_test'):.1f} -> {100 * m('test'):.1f} "
                   f"| {' / '.join(f'{g:+.1f}' for g in gains)} | {gains.mean():+.2f} |")
    first = rows[0]
    return "\n".join(out + ["", f"Plaintext (secure tuning follows it), task sst2 on the built-in sentences, split "
                                 f"{first['split']}, popsize {first['popsize']}, {first['test_examples']} test "
                                 f"sentences; {_commits(rows)}."])


PAPER = {"sst2": ("88.11", "89.56"), "yelp": ("85.23", "91.50"), "agnews": ("81.27", "81.51"),
         "mrpc": ("75.33", "75.51"), "rte": ("52.95", "77.62")}   # SecP-Tuning (RFA, on shares) and plaintext BBT, RoBERTa-large, 16-shot


def render_tune_secure(rows: list) -> str:
    out = ["| attention | task | head | metric | test examples | zero-shot (plain) | tuned, plain twin | tuned, secure "
           "| secure - plain | s / generation | rounds / gen. | GB / server / gen. | LAN min / gen. | WAN min / gen. "
           "| paper: SecP-Tuning / BBT |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    plain = {(r["attention"], r["task"], _head(r)): r for r in rows if r["mode"] == "plain"}
    for r in rows:
        if r["mode"] != "mpc":
            continue
        p = plain.get((r["attention"], r["task"], _head(r)))
        zs = f"{100 * p['zero_shot_metric']:.1f}" if p and p.get("zero_shot_metric") is not None else "-"
        pt = f"{100 * p['test_metric']:.1f}" if p else "-"
        diff = f"{100 * (r['test_metric'] - p['test_metric']):+.1f}" if p else "-"
        att = r["attention"] + (f" (M = {r['features']})" if r["attention"] == "rfa" else "")
        if r["attention"] == "rfa" and ((r.get("feature_map") or "trig") != "trig" or r.get("rfa_layers")
                                        or r.get("centre_keys")):
            att = (f"rfa ({r.get('feature_map') or 'trig'}, M = {r['features']}, "
                   f"layers {r.get('rfa_layers') or 'all'}{', centred keys' if r.get('centre_keys') else ''})")
        paper = PAPER.get(r["task"], ("-", "-"))
        out.append(
            f"| {att} | {r['task']} | {_head(r)} | {r['metric']} | {r['test_examples']} | {zs} | {pt} | {100 * r['test_metric']:.1f} "
            f"| {diff} | {r['seconds_per_generation']:.0f} | {r['rounds_per_generation']:.0f} "
            f"| {r['bytes_per_party_per_generation'] / 1e9:.1f} | {r['lan_seconds_per_generation'] / 60:.1f} "
            f"| {r['wan_seconds_per_generation'] / 60:.0f} | {paper[0]} / {paper[1]} |")
    first = rows[0]
    return "\n".join(out + ["", f"Split 16-13, {first['budget']} model calls (popsize {first['popsize']}), "
                             f"{first['weights']} weights; {_commits(rows)}."])


def _commits(rows: list) -> str:
    """'commit `c`', or, for rows measured at several commits, which tasks ran at which."""
    by = {}
    for r in rows:
        tasks = by.setdefault(r.get("commit", "?"), [])
        if r["task"] not in tasks:
            tasks.append(r["task"])
    if len(by) == 1:
        return f"commit `{next(iter(by))}`"
    return "commits " + ", ".join(f"`{c}` ({', '.join(t)})" for c, t in by.items())


def render_deploy(rows: list) -> str:
    out = ["| setting | weights | batch | seconds | rounds | GB / server (engine) | GB / server (socket payload) "
           "| GB / server (frames) | scores equal |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        sock = r.get("socket_payload_bytes_per_server")
        frames = r.get("socket_frame_bytes_per_server")
        out.append(f"| {r['setting']} | {r['weights']} | {r['batch']} x {r['seq_len']} | {r['seconds']:.2f} "
                   f"| {r['rounds']} | {r['engine_bytes_per_server'] / 1e9:.3f} "
                   f"| {'-' if sock is None else f'{sock / 1e9:.3f}'} | {'-' if frames is None else f'{frames / 1e9:.3f}'} "
                   f"| {r.get('scores_equal_in_process', '-')} |")
    first = rows[0]
    return "\n".join(out + ["", f"Network model for the in-process run: LAN {first['lan_model_s']:.1f} s, WAN "
                             f"{first['wan_model_s']:.0f} s; commit `{first.get('commit', '?')}`."])


def render_heldout(rows: list) -> str:
    out = ["| task | variant | split | held-out examples | template: dev / held-out | tuned (kept): dev / held-out "
           "| held-out, tuned - template |", "|---|---|---|---:|---:|---:|---:|"]
    by = {}
    for r in rows:
        t, k = r["template"], r["kept"]
        by.setdefault((r["task"], r["variant"]), []).append((t["held_metric"], k["held_metric"]))
        out.append(f"| {r['task']} | {r['variant']} | {r['split']} | {r['held_out_examples']} | {100 * t['dev_metric']:.1f} / "
                   f"{100 * t['held_metric']:.1f} | {100 * k['dev_metric']:.1f} / {100 * k['held_metric']:.1f} "
                   f"(gen. {k['generation']}) | {100 * (k['held_metric'] - t['held_metric']):+.1f} |")
    for (task, v), pairs in by.items():
        t, k = (statistics.mean(x) for x in zip(*pairs))
        out.append(f"| **{task}** | **{v}**, mean | | | {100 * t:.1f} | {100 * k:.1f} | **{100 * (k - t):+.1f}** |")
    return "\n".join(out + ["", f"Plaintext, {_commits(rows)}; the metric is each task's (MRPC: F1)."])


def render_file(path: str) -> str:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        return "(no results)"
    if "setting" in rows[0]:
        return render_deploy(rows)
    if "untuned_train_loss" in rows[0] and "sigma" in rows[0]:
        return render_first_run(rows)
    if "held_out_examples" in rows[0]:
        return render_heldout(rows)
    if "config" in rows[0] and "zero_shot_metric" in rows[0]:
        return render_rfa_layers(rows)
    if "kind" in rows[0]:
        return render_attention(rows)
    if "median_rel_err" in rows[0]:
        return render_rfa(rows)
    if "zero_shot_metric" in rows[0] and any(r["mode"] == "mpc" for r in rows):
        return render_tune_secure(rows)
    if "zero_shot_metric" in rows[0]:
        return render_tune(rows)
    if "mode" in rows[0]:
        return render_encoder(rows)
    if "anchor_argmax_agreement" in rows[0]:
        return render_fidelity(rows)
    return render_ops(rows)


def refresh(doc: str) -> None:
    """Rewrite every block between <!-- results: FILE --> and <!-- /results --> in doc."""
    import re

    text = open(doc).read()

    def sub(m):
        return f"{m.group(1)}\n{render_file(m.group(2))}\n<!-- /results -->"

    # a block's body may be empty, and never runs into another block's markers
    text = re.sub(r"(<!-- results: (\S+) -->)\n(?:(?!<!-- /?results).)*?<!-- /results -->", sub, text, flags=re.S)
    open(doc, "w").write(text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--refresh":
        for doc in argv[1:]:
            refresh(doc)
        return 0
    print(render_file(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
