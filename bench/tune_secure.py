"""Secure tuning on the five tasks beside plaintext twins with the same settings and seeds.

    python -m bench.tune_secure [--data DIR] [--budget 30] [--attention softmax,rfa]
                                [--features M] [--feature-map trig|positive] [--rfa-layers LIST] [--centre-keys]
                                [--rfa-seed N] [--modes plain,mpc]
                                [--weights public] [--head anchor|pair] [--out bench/results/tune_secure.jsonl]

For each attention kind and task (split 16-13): one ``secptune tune --mode
plain`` run and one ``--mode mpc`` run with the same settings and seeds, in
run folders under runs/ (an interrupted benchmark resumes them).  The
secure run scores only the tuned prompt on the test set (the untuned
template's score is the plaintext twin's: the same model on the same
inputs); test sets are capped at ``--test-limit`` examples.  One JSON line
per run: the run's metrics.json (test metric, seconds, rounds and bytes per
party per generation, modeled LAN and WAN seconds) plus the settings.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

from secptune.tuning.run import RunSpec, tune_run
from secptune.tuning.tasks import HEADS, TASKS
from secptune.weights.default import default_model_dir

from .common import git_commit, write_jsonl


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tune_secure")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--budget", type=int, default=30)
    p.add_argument("--popsize", type=int, default=10)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--attention", default="softmax,rfa")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--feature-map", choices=["trig", "positive"], default="trig")
    p.add_argument("--rfa-layers", default="", help="RFA only in these layers, e.g. 0,1,2 (default: every layer)")
    p.add_argument("--centre-keys", action="store_true", help="RFA features on centred keys (AttentionConfig.centre_keys)")
    p.add_argument("--rfa-seed", type=int, default=0, help="seed of RFA's random projections")
    p.add_argument("--modes", default="plain,mpc", help="plain, mpc or both (the plaintext twins alone: plain)")
    p.add_argument("--weights", choices=["public", "private"], default="public")
    p.add_argument("--test-limit", type=int, default=500)
    p.add_argument("--head", choices=HEADS, help="embedding head (default: each task's own)")
    p.add_argument("--out", default="bench/results/tune_secure.jsonl")
    args = p.parse_args(argv)
    modes = [m for m in ("plain", "mpc") if m in args.modes.split(",")]
    if not modes or set(args.modes.split(",")) - {"plain", "mpc"}:
        raise SystemExit(f"--modes: plain, mpc or plain,mpc, got {args.modes!r}")
    rows, commit = [], git_commit()          # the code that runs, whatever is committed meanwhile
    for kind in args.attention.split(","):
        for name in args.tasks.split(","):
            for mode in modes:
                spec = RunSpec(task=name, data=str(Path(args.data).resolve()), split="16-13",
                               model=str(default_model_dir()), mode=mode, prompt_len=10, subspace_dim=100,
                               popsize=args.popsize, sigma=1.0, budget=args.budget, max_len=64, attention=kind,
                               features=args.features, feature_map=args.feature_map, rfa_layers=args.rfa_layers,
                               centre_keys=args.centre_keys, rfa_seed=args.rfa_seed, weights=args.weights,
                               eval_every=5, patience=0, seed=0,
                               test_limit=args.test_limit, zero_shot=mode == "plain",
                               head=args.head or TASKS[name].head)
                rfa = f"-{args.feature_map}{args.features}-l{args.rfa_layers.replace(',', '')}" \
                    if kind == "rfa" and (args.feature_map != "trig" or args.rfa_layers) else ""
                rfa += "-centred" if kind == "rfa" and args.centre_keys else ""
                rfa += f"-seed{args.rfa_seed}" if kind == "rfa" and args.rfa_seed else ""
                out = Path("runs") / f"tune_secure-{kind}{rfa}-{name}-{mode}-b{args.budget}-{args.weights}-{spec.head}"
                log = io.StringIO()
                m = tune_run(spec, out, stream=log)
                m.update(budget=args.budget, popsize=args.popsize, commit=commit)
                rows.append(m)
                extra = (f", {m['seconds_per_generation']:.0f} s/gen, {m['bytes_per_party_per_generation']:.3g} "
                         f"B/party/gen" if mode == "mpc" else "")
                print(f"{kind} {name} {mode} ({spec.head} head): test {m['test_metric']:.4f}{extra}", flush=True)
                write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
