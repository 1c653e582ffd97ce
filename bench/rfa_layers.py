"""Which layers of the packaged MiniLM can take random-feature attention: task accuracy.

    python -m bench.rfa_layers [--data DIR] [--tasks sst2,rte] [--test-limit 500] [--only LABELS]
                               [--seeds N] [--out FILE]

The untuned template (a zero prompt, the tuning runs' zero-shot column) in
plaintext through the tuning code (``tuning.loop.Scorer``), on a task's test
set, with softmax attention everywhere and with RFA (``AttentionConfig``:
``feature_map``, M ``features``, ``layers``) in one layer at a time, in the
first layers, and in every layer.  The pair head's threshold is fitted on the
split's training scores under the same attention, as in the tuning runs.
Plaintext float32 like the tuning's plain mode: a measurement of what the
approximation does to the model, not of the secure engine (the secure forward
follows its plaintext twin; ``bench.fidelity``, ``bench.tune_secure``).
With ``--seeds N`` every RFA setting runs with the projection seeds 0 .. N-1
(the random features are one draw: their spread is part of the result) and
reports the mean and the per-seed metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from secptune.nn.attention import AttentionConfig
from secptune.tuning.data import DataError
from secptune.tuning.loop import ClientHead, Scorer, TuneConfig
from secptune.tuning.metrics import score
from secptune.tuning.prepare import anchor_embeddings, load_tokenizer
from secptune.tuning.run import predictions, template_param
from secptune.tuning.tasks import TASKS
from secptune.weights.checkpoint import load_checkpoint
from secptune.weights.default import default_model_dir

from .common import git_commit, table, write_jsonl

PROMPT_LEN, MAX_LEN = 10, 64      # the tuning runs' settings (bench.tune_all, bench.tune_secure)


def configs(n_layers: int) -> list:
    """(label, AttentionConfig): softmax; each feature map at M = 64 in each single layer;
    M = 64 and 256 in the first half of the layers and in every layer; positive features
    on centred keys (``AttentionConfig.centre_keys``) at M = 64 and 256 in the first half
    and in every layer."""
    out = [("softmax", AttentionConfig())]
    first = tuple(range(n_layers // 2))
    for fmap in ("trig", "positive"):
        for i in range(n_layers):
            out.append((f"{fmap} 64, layer {i}", AttentionConfig("rfa", 64, fmap, layers=(i,))))
        for M in (64, 256):
            out.append((f"{fmap} {M}, layers 0-{first[-1]}", AttentionConfig("rfa", M, fmap, layers=first)))
            out.append((f"{fmap} {M}, every layer", AttentionConfig("rfa", M, fmap)))
    for M in (64, 256):
        out.append((f"positive {M} centred, layers 0-{first[-1]}",
                    AttentionConfig("rfa", M, "positive", layers=first, centre_keys=True)))
        out.append((f"positive {M} centred, every layer", AttentionConfig("rfa", M, "positive", centre_keys=True)))
    return out


def zero_shot(task, data, split, test_limit, att, model) -> tuple:
    """The untuned template's test metric under attention ``att``, and the test examples."""
    cfg, params, tok, anchors = model
    tc = TuneConfig(prompt_len=PROMPT_LEN, subspace_dim=1, popsize=1, budget=1, head=task.head,
                    pair_class=task.pair_class, attention=att)
    head = ClientHead.of(tc)

    def scores(ids, mask, prompts, tag):
        return Scorer(cfg, params, ids, mask, anchors, tc)(prompts, tag=tag)

    zero = np.zeros((1, PROMPT_LEN, cfg.hidden))
    param = template_param(scores, head, tok, task, task.load(data, split, "train"), PROMPT_LEN, MAX_LEN, zero[0])
    test = task.load(data, split, "test")[:test_limit or None]
    preds, gold = predictions(scores, head, tok, task, test, PROMPT_LEN, MAX_LEN, zero, [param])
    return score(task.metric, preds[0], gold), len(test)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rfa_layers")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--tasks", default="sst2,rte")
    p.add_argument("--split", default="16-13")
    p.add_argument("--test-limit", type=int, default=500, help="first N test examples (0: all)")
    p.add_argument("--only", default="", help="semicolon-separated labels of the settings to run (default: all)")
    p.add_argument("--seeds", type=int, default=1, help="projection seeds per RFA setting (0 .. N-1)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f"--seeds: need at least 1, got {args.seeds}")
    only = {t.strip() for t in args.only.split(";") if t.strip()}
    commit = git_commit()            # the code that runs, whatever is edited meanwhile
    mdir = default_model_dir()
    cfg, params = load_checkpoint(mdir)
    tok = load_tokenizer(mdir)
    rows = []
    for name in args.tasks.split(","):
        if name not in TASKS:
            raise SystemExit(f"--tasks: unknown task {name!r} (known: {', '.join(sorted(TASKS))})")
        task = TASKS[name]
        try:
            task.load(args.data, args.split, "train")
        except DataError as e:
            raise SystemExit(f"{e}: pass --data or set SECPTUNE_DATA to the shared data folder")
        model = (cfg, params, tok, anchor_embeddings(tok, cfg, params, task))
        chosen = [(label, att) for label, att in configs(len(params.layers)) if not only or label in only]
        if only - {label for label, _ in chosen}:
            raise SystemExit(f"--only: unknown settings {sorted(only - {label for label, _ in chosen})}")
        for label, att in chosen:
            t = time.perf_counter()
            seeds = range(args.seeds if att.kind == "rfa" else 1)
            per_seed = [zero_shot(task, args.data, args.split, args.test_limit, dataclasses.replace(att, seed=s), model)
                        for s in seeds]
            metric, n = float(np.mean([m for m, _ in per_seed])), per_seed[0][1]
            rows.append({"task": name, "head": task.head, "metric": task.metric, "split": args.split,
                         "config": label, "kind": att.kind, "feature_map": att.feature_map if att.kind == "rfa" else None,
                         "features": att.features if att.kind == "rfa" else None,
                         "layers": list(att.layers) if att.layers is not None else "all",
                         "centre_keys": att.centre_keys,
                         "zero_shot_metric": metric, "zero_shot_metrics": [m for m, _ in per_seed],
                         "seeds": len(per_seed), "test_examples": n, "commit": commit})
            print(f"{name} {label:36s} {100 * metric:5.1f}  {[round(100 * m, 1) for m, _ in per_seed]}  "
                  f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    print(table(rows, [("task", "task", "{}"), ("config", "attention", "{}"),
                       ("zero_shot_metric", "zero-shot", "{:.3f}"), ("test_examples", "examples", "{}")]))
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
