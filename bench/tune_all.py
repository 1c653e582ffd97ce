"""Plaintext forward-only tuning on the five tasks and three splits, with zero-shot baselines.

    python -m bench.tune_all [--data DIR] [--budget 200] [--out bench/results/tune_plain.jsonl]

One ``secptune tune --mode plain`` run per (task, split) in runs/, and one
JSON line per run with the tuned and zero-shot (zero prompt) test metric;
then the mean and standard deviation over splits per task.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

from secptune.tuning.run import RunSpec, tune_run
from secptune.tuning.tasks import HEADS, TASKS
from secptune.weights.default import default_model_dir

from .common import git_commit, write_jsonl


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tune_all")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--popsize", type=int, default=10)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--head", choices=HEADS, help="embedding head (default: each task's own)")
    p.add_argument("--out", default="bench/results/tune_plain.jsonl")
    args = p.parse_args(argv)
    rows, commit = [], git_commit()          # the code that runs, whatever is committed meanwhile
    for name in args.tasks.split(","):
        for split in ("16-13", "16-21", "16-42"):
            spec = RunSpec(task=name, data=str(Path(args.data).resolve()), split=split, model=str(default_model_dir()),
                           mode="plain", prompt_len=10, subspace_dim=100, popsize=args.popsize, sigma=1.0,
                           budget=args.budget, max_len=64, attention="softmax", features=64, weights="public",
                           eval_every=5, patience=0, seed=0, test_limit=args.test_limit,
                           head=args.head or TASKS[name].head)
            out = Path("runs") / f"tune_all-{name}-{split}-b{args.budget}-{spec.head}"
            m = tune_run(spec, out, stream=io.StringIO())
            m.update(budget=args.budget, commit=commit)
            rows.append(m)
            print(f"{name} {split} ({spec.head} head): zero-shot {m['zero_shot_metric']:.3f} tuned {m['test_metric']:.3f} (dev {m['dev_metric']:.3f})",
                  flush=True)
            write_jsonl(rows, args.out)
    for name in args.tasks.split(","):
        r = [x for x in rows if x["task"] == name]
        zs, tu = np.array([x["zero_shot_metric"] for x in r]), np.array([x["test_metric"] for x in r])
        print(f"{name}: zero-shot {100 * zs.mean():.1f} +- {100 * zs.std():.1f}, tuned {100 * tu.mean():.1f} +- {100 * tu.std():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
