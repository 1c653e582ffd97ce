"""Plaintext forward-only tuning on several tasks and three splits, with the untuned template.

    python -m bench.tune_all [--data DIR] [--tasks sst2,yelp,agnews,mrpc,rte] [--model NAME_OR_DIR]
                             [--head HEAD] [--budget N] [--test-limit N] [--out bench/results/tune_plain.jsonl]

Each run is the ``secptune tune`` command a user would type, run through the
CLI itself (so the CLI's defaults apply: prompt length 10, d = 100, popsize 10,
200 model calls, 64 tokens, each task's own head, whole test sets), with its
run folder under runs/tune_all/.  One JSON line per run: the run's
metrics.json, the split, and ``command``, the exact command; then the mean
and standard deviation over splits per task.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from secptune.cli import main as secptune
from secptune.tuning.tasks import HEADS, TASKS

from .common import git_commit, write_jsonl

SPLITS = ("16-13", "16-21", "16-42")


def command(task: str, data: str, split: str, args) -> list:
    """The ``secptune tune`` arguments of one run (options at their CLI default are left out)."""
    argv = ["tune", "--task", task, "--data", data, "--split", split, "--mode", "plain"]
    for flag, value in (("--model", args.model), ("--head", args.head), ("--budget", args.budget),
                        ("--test-limit", args.test_limit)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tune_all")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--model", help="as secptune tune's --model (default the packaged MiniLM)")
    p.add_argument("--head", choices=HEADS, help="as secptune tune's --head (default: each task's own)")
    p.add_argument("--budget", type=int, help="model calls (default: secptune tune's)")
    p.add_argument("--test-limit", type=int, help="test examples (default: secptune tune's, the whole test set)")
    p.add_argument("--out", default="bench/results/tune_plain.jsonl")
    args = p.parse_args(argv)
    rows, commit = [], git_commit()          # the code that runs, whatever is committed meanwhile
    bench_cmd = "python -m bench.tune_all " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                 else sys.argv[1:]))
    for name in args.tasks.split(","):
        for split in SPLITS:
            cmd = command(name, args.data, split, args)
            out = Path("runs") / "tune_all" / (f"{name}-{split}-{Path(args.model or 'minilm').name}-"
                                               f"{args.head or TASKS[name].head}"
                                               + (f"-b{args.budget}" if args.budget else ""))
            with contextlib.redirect_stdout(io.StringIO()) as log:
                code = secptune(cmd + ["--out", str(out)])
            if code != 0:
                print(log.getvalue(), file=sys.stderr)
                return code
            m = json.loads((out / "metrics.json").read_text())
            m.update(command="secptune " + " ".join(shlex.quote(a) for a in cmd), bench_command=bench_cmd,
                     commit=commit)
            rows.append(m)
            print(f"{name} {split} ({m['head']} head): untuned {m['zero_shot_metric']:.3f} tuned "
                  f"{m['test_metric']:.3f} (dev {m['dev_metric']:.3f}) on {m['test_examples']} test examples",
                  flush=True)
            write_jsonl(rows, args.out)
    for name in args.tasks.split(","):
        r = [x for x in rows if x["task"] == name]
        zs, tu = np.array([x["zero_shot_metric"] for x in r]), np.array([x["test_metric"] for x in r])
        print(f"{name}: untuned {100 * zs.mean():.1f} +- {100 * zs.std():.1f}, "
              f"tuned {100 * tu.mean():.1f} +- {100 * tu.std():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
