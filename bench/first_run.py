"""How much the README's main job can show: tuned against untuned over seeds, on the built-in data.

    python -m bench.first_run [--budgets 32,64] [--sigmas 1,5,20] [--prompt-lens 10] [--seeds 0,1,2]
                              [--test-limit 300] [--out bench/results/first_run.jsonl]

The main job runs on shares, but secure tuning gives its plaintext twin's
losses and predictions (docs/results.md), so its settings are chosen here in
plaintext, where a run takes seconds: for each budget, prompt length and
CMA-ES seed (the seed also draws the projection), one ``secptune tune --mode
plain`` run on the built-in sentences (task sst2, split 16-13, popsize 8),
scored on the first ``--test-limit`` sentences of the built-in test set (936
sentences in all; 0: all).  ``--sigmas``: CMA-ES's initial step size; Black-Box
Tuning's 1 moves the prompt little in a few generations.  One JSON line per run:
the settings, the untuned and final training loss, dev and test metric of
the tuned prompt and of the untuned template, the gain's bootstrap standard
error; then the mean gain over seeds per setting.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
from pathlib import Path

import numpy as np

from secptune.tuning.run import RunSpec, read_log, tune_run
from secptune.tuning.tasks import BUILTIN
from secptune.weights.default import default_model_dir

from .common import git_commit, write_jsonl


def _ints(text: str) -> list:
    return [int(v) for v in text.split(",") if v]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.first_run")
    p.add_argument("--budgets", type=_ints, default=[32, 64])
    p.add_argument("--sigmas", type=lambda t: [float(v) for v in t.split(",")], default=[1.0, 5.0, 20.0])
    p.add_argument("--test-limit", type=int, default=300)
    p.add_argument("--prompt-lens", type=_ints, default=[10])
    p.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    p.add_argument("--popsize", type=int, default=8)
    p.add_argument("--split", default="16-13")
    p.add_argument("--runs", default="runs/first_run", help="where the run folders go")
    p.add_argument("--out", default="bench/results/first_run.jsonl")
    args = p.parse_args(argv)
    rows, commit = [], git_commit()
    settings = [(L, sigma, budget) for L in args.prompt_lens for sigma in args.sigmas for budget in args.budgets]
    for (L, sigma, budget), seed in itertools.product(settings, args.seeds):
        spec = RunSpec(task="sst2", data=BUILTIN, split=args.split, model=str(default_model_dir()),
                       mode="plain", prompt_len=L, subspace_dim=100, popsize=args.popsize, sigma=sigma,
                       budget=budget, max_len=64, attention="softmax", features=64, weights="private",
                       eval_every=5, patience=0, seed=seed, test_limit=args.test_limit, head="anchor")
        out = Path(args.runs) / f"L{L}-sigma{sigma:g}-b{budget}-s{seed}"
        m = tune_run(spec, out, stream=io.StringIO())
        gens = [r for r in read_log(out) if "gen" in r]
        row = {"task": "sst2", "data": BUILTIN, "split": args.split, "prompt_len": L, "sigma": sigma,
               "budget": budget, "popsize": args.popsize, "seed": seed,
               "untuned_train_loss": m["untuned_train_loss"], "final_best_loss": min(r["best_loss"] for r in gens),
               "untuned_dev": m["untuned_dev_metric"], "dev": m["dev_metric"],
               "test": m["test_metric"], "untuned_test": m["zero_shot_metric"],
               "gain": m["test_metric"] - m["zero_shot_metric"], "gain_se": m["gain_se"],
               "test_examples": m["test_examples"], "commit": commit}
        rows.append(row)
        print(f"L {L} sigma {sigma:g} budget {budget} seed {seed}: loss {row['untuned_train_loss']:.4f} -> "
              f"{row['final_best_loss']:.4f}, dev {row['untuned_dev']:.3f} -> {row['dev']:.3f}, test "
              f"{row['untuned_test']:.3f} -> {row['test']:.3f} (gain {100 * row['gain']:+.1f} +- "
              f"{100 * row['gain_se']:.1f})", flush=True)
        write_jsonl(rows, args.out)
    for L, sigma, budget in settings:
        g = np.array([r["gain"] for r in rows if (r["prompt_len"], r["sigma"], r["budget"]) == (L, sigma, budget)])
        print(f"L {L} sigma {sigma:g} budget {budget}: mean gain {100 * g.mean():+.2f} points over {len(g)} seeds "
              f"(std {100 * g.std():.2f}; {int((g > 0).sum())} up, {int((g < 0).sum())} down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
