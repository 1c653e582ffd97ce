"""Does forward-only tuning beat the untuned template on examples it has never seen?

    python -m bench.heldout [--data DIR] [--tasks rte] [--variants base,slope,...] [--out FILE]

An exploratory check for target (b) that never reads the test set: for each
few-shot split S, the held-out examples are the other two splits' train and
dev examples that are not in S (120 for RTE: the splits are independent
draws from GLUE's training set).  The run tunes on S's train set exactly as
``bench.tune_all`` does (plaintext, prompt length 10, d = 100, popsize 10,
200 model calls), evaluates the best-so-far prompt every 5 generations on
S's dev set and on the held-out examples, and records the untuned template
(a zero prompt) the same way.

Variants of the pair head (RTE and MRPC), none of them a product option:
they are applied here by wrapping the library's functions, to decide whether
one is worth making an option.

- ``base``: the product as it is (threshold b fitted with slope 1).
- ``slope``: the client fits slope and threshold (a 1-D logistic regression
  on the opened scores), so the loss is calibrated.
- ``sentence``: as ``slope``, and the mean pool skips the prompt positions
  (the prompt acts through attention only).
- ``second``: as ``slope``, and the prompt is added to the second sentence
  only (the first keeps the zero prompt on its placeholders).

One JSON line per (variant, split): the template's and every evaluated
prompt's train / dev / held-out metric and loss.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from secptune.nn import encoder as E
from secptune.tuning import loop as L
from secptune.tuning.metrics import score
from secptune.tuning.prepare import anchor_embeddings, encode_examples, load_tokenizer
from secptune.tuning.tasks import TASKS
from secptune.weights.checkpoint import load_checkpoint
from secptune.weights.default import default_model_dir

from .common import git_commit, write_jsonl

SPLITS = ("16-13", "16-21", "16-42")
PROMPT_LEN = 10
VARIANTS = ("base", "slope", "sentence", "second")


@dataclass(frozen=True)
class SlopeHead(L.ClientHead):
    """The pair head with slope a and threshold b fitted by Newton's method on the
    standardised scores (a small ridge keeps separable sets finite); class score a s - b."""

    def fit(self, raw, labels):
        s = np.asarray(raw, np.float64)[:, 0]
        t = (np.asarray(labels) == self.pair_class).astype(np.float64)
        mu, sd = s.mean(), s.std() + 1e-12
        X = np.stack([(s - mu) / sd, np.ones_like(s)], 1)
        w = np.zeros(2)
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-X @ w))
            g = X.T @ (t - p) - 1e-3 * w
            H = (X * (p * (1 - p))[:, None]).T @ X + 1e-3 * np.eye(2)
            step = np.linalg.solve(H, g)
            w = w + step
            if np.abs(step).max() < 1e-10:
                break
        a = w[0] / sd
        return (a, a * mu - w[1])

    def logits(self, raw, param):
        raw = np.asarray(raw, np.float64)
        out = np.zeros(raw.shape[:-1] + (2,))
        out[..., self.pair_class] = param[0] * raw[..., 0] - param[1]
        return out


def _apply_variant(variant: str, task) -> None:
    """Wrap the library's head, pooling and prompt injection for ``variant`` (this process only)."""
    if variant == "base":
        return
    head = SlopeHead("pair", task.pair_class)
    L.ClientHead.of = classmethod(lambda cls, tune_cfg: head)
    if variant == "sentence":
        pool = E.mean_pool

        def mean_pool(h, mask):
            m = np.array(mask, np.float64, copy=True)
            m[:, 1:1 + PROMPT_LEN] = 0
            return pool(h, m)
        L.E.mean_pool = mean_pool
    elif variant == "second":
        add = E.add_prompt

        def add_prompt(x, prompts):
            P, rows = prompts.shape[0], x.shape[0]
            out = add(x, prompts).reshape((P, rows) + x.shape[1:])
            out[:, 0::2] = add(x, np.zeros_like(prompts[:1]))[0::2][None]    # rows 2e: first sentences
            return out.reshape((P * rows,) + x.shape[1:])
        L.E.add_prompt = add_prompt


def held_out(task, data: str, split: str) -> list:
    """The other splits' train and dev examples that are not in ``split`` (deduplicated)."""
    seen = {tuple(e.texts) for part in ("train", "dev") for e in task.load(data, split, part)}
    out = []
    for s in SPLITS:
        if s == split:
            continue
        for part in ("train", "dev"):
            for e in task.load(data, s, part):
                if tuple(e.texts) not in seen:
                    seen.add(tuple(e.texts))
                    out.append(e)
    return out


def run_split(task, data, split, budget, model) -> dict:
    cfg, params, tok, anchors = model
    tc = L.TuneConfig(prompt_len=PROMPT_LEN, subspace_dim=100, popsize=10, sigma=1.0, budget=budget, seed=0,
                      mode="plain", head=task.head, pair_class=task.pair_class)
    head = L.ClientHead.of(tc)
    sets = {"train": task.load(data, split, "train"), "dev": task.load(data, split, "dev"),
            "held": held_out(task, data, split)}
    enc = {k: encode_examples(tok, task, v, PROMPT_LEN, 64, tc.head) for k, v in sets.items()}
    scorers = {k: L.Scorer(cfg, params, ids, mask, anchors, tc) for k, (ids, mask, _) in enc.items()}
    proj = L.Projection.for_model(tc, params)

    def evaluate(z):
        P = proj(z[None])
        raw = {k: s(P)[0] for k, s in scorers.items()}
        param = head.fit(raw["train"], enc["train"][2])
        res = {}
        for k, r in raw.items():
            lg, y = head.logits(r, param), enc[k][2]
            res[f"{k}_metric"], res[f"{k}_loss"] = score(task.metric, np.argmax(lg, -1), y), L.cross_entropy(lg, y)
        return res

    rec = {"split": split, "held_out_examples": len(sets["held"]), "template": evaluate(np.zeros(tc.subspace_dim))}
    es, best, evals, t0 = L.new_strategy(tc), (np.inf, None), [], time.perf_counter()
    for g in range(budget // tc.popsize):
        Z, _, losses, _ = L.generation_step(es, scorers["train"], proj, enc["train"][2], "heldout")
        j = int(np.argmin(losses))
        if losses[j] < best[0]:
            best = (losses[j], Z[j])
        if (g + 1) % 5 == 0:
            evals.append({"generation": g + 1, "calls": (g + 1) * tc.popsize, **evaluate(best[1])})
    # the product's rule: the first prompt with the highest dev metric among the evaluated ones
    kept = max(evals, key=lambda e: (e["dev_metric"], -e["generation"]))
    rec.update(evals=evals, kept=kept, seconds=time.perf_counter() - t0)
    return rec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.heldout")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--tasks", default="rte", help="comma-separated task names")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--out", default="bench/results/heldout.jsonl")
    args = p.parse_args(argv)
    tasks = args.tasks.split(",")
    variants = args.variants.split(",")
    for name in tasks:
        if name not in TASKS:
            p.error(f"--tasks: unknown task {name!r} (choose from {', '.join(TASKS)})")
        for v in variants:
            if v not in VARIANTS:
                p.error(f"--variants: unknown variant {v!r} (choose from {', '.join(VARIANTS)})")
            if v != "base" and TASKS[name].head != "pair":
                p.error(f"--variants {v}: only for pair-head tasks (mrpc, rte), not {name}")
    mdir = default_model_dir()
    cfg, params = load_checkpoint(mdir)
    tok = load_tokenizer(mdir)
    data = str(Path(args.data).resolve())
    rows, commit = [], git_commit()
    saved = (L.ClientHead.__dict__["of"], L.E.mean_pool, L.E.add_prompt)
    for name in tasks:
        task = TASKS[name]
        model = (cfg, params, tok, anchor_embeddings(tok, cfg, params, task))
        for v in variants:
            _apply_variant(v, task)
            for split in SPLITS:
                r = {"task": name, "variant": v, **run_split(task, data, split, args.budget, model), "commit": commit}
                rows.append(r)
                write_jsonl(rows, args.out)
                k = r["kept"]
                print(f"{name} {v:8s} {split}: held-out template {r['template']['held_metric']:.3f} tuned "
                      f"{k['held_metric']:.3f} (dev {r['template']['dev_metric']:.3f} -> {k['dev_metric']:.3f}, "
                      f"gen {k['generation']})", flush=True)
            L.ClientHead.of, L.E.mean_pool, L.E.add_prompt = saved
    for name in tasks:
        for v in variants:
            r = [x for x in rows if x["variant"] == v and x["task"] == name]
            zs = np.mean([x["template"]["held_metric"] for x in r])
            tu = np.mean([x["kept"]["held_metric"] for x in r])
            print(f"{name} {v}: held-out template {100 * zs:.1f}, tuned {100 * tu:.1f} ({100 * (tu - zs):+.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
