"""Secure MiniLM forward vs plaintext on real sentences (the encoder's fidelity report).

    python -m bench.fidelity [--data DIR] [--sentences 200] [--out FILE]

SST-2 test sentences (from --data or $SECPTUNE_DATA), batched and padded;
the secure forward with private weights (shared by the model owner) and the
client's embeddings shared; mean pooling.  Per attention kind (softmax, RFA):
max and mean abs error of the pooled embedding against the float64
plaintext forward with the same attention, and the agreement of the
two-anchor embedding head's argmax ("It was great." / "It was bad.", anchors
embedded in plaintext) between the secure and the plaintext embeddings.
Settings: softmax, RFA (trigonometric, M = 64, every layer), and RFA with
positive features (M = 256) in layers 0-2, the RFA setting closest to
softmax on task accuracy (``bench.rfa_layers``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.nn import encoder as E
from secptune.nn.attention import AttentionConfig
from secptune.nn.heads import anchor_scores
from secptune.tuning.prepare import pad_batch
from secptune.weights.checkpoint import load_checkpoint
from secptune.weights.default import default_model_dir

from .common import git_commit, table, write_jsonl

ANCHORS = ("It was bad.", "It was great.")


def tokenize(tok, texts):
    return pad_batch([tok.encode(t).ids[:128] for t in texts])


def main(argv=None) -> int:
    from tokenizers import Tokenizer

    p = argparse.ArgumentParser(prog="python -m bench.fidelity")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--sentences", type=int, default=200)
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--out")
    args = p.parse_args(argv)
    path = Path(args.data) / "k-shot" / "SST-2" / "test.tsv"
    if not path.exists():
        raise SystemExit(f"{path} not found: pass --data or set SECPTUNE_DATA")
    texts = [ln.split("\t")[0] for ln in path.read_text(encoding="utf-8").splitlines()[1:]][:args.sentences]
    mdir = default_model_dir()
    cfg, params = load_checkpoint(mdir)
    tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    rows = []
    settings = [("softmax", AttentionConfig()), ("rfa", AttentionConfig("rfa")),
                # the RFA settings closest to softmax on task accuracy (bench.rfa_layers)
                ("rfa (positive, M = 256, layers 0-2)", AttentionConfig("rfa", 256, "positive", layers=(0, 1, 2))),
                ("rfa (positive, M = 64, centred keys, layers 0-2)",
                 AttentionConfig("rfa", 64, "positive", layers=(0, 1, 2), centre_keys=True))]
    for kind, att in settings:
        aid, amask = tokenize(tok, list(ANCHORS))
        anchors = E.mean_pool(E.encode(params, E.embed(params, cfg, aid), amask, cfg, att), amask)
        ctx = Context(EngineConfig(seed=11))
        sp = E.share_weights(ctx, params, private=True)
        plain, secure = [], []
        t0 = time.perf_counter()
        for i in range(0, len(texts), args.batch):
            ids, mask = tokenize(tok, texts[i:i + args.batch])
            x = E.embed(params, cfg, ids)
            plain.append(E.mean_pool(E.encode(params, x, mask, cfg, att), mask))
            out = E.mean_pool(E.encode(sp, SharedTensor.from_client(ctx, x), mask, cfg, att), mask)
            secure.append(out.reveal("bench/pooled", to=3))
            print(f"{kind}: {i + len(ids)} sentences, {time.perf_counter() - t0:.0f} s", flush=True)
        plain, secure = np.concatenate(plain), np.concatenate(secure)
        err = np.abs(secure - plain)
        agree = float(np.mean(np.argmax(anchor_scores(secure, anchors), -1)
                              == np.argmax(anchor_scores(plain, anchors), -1)))
        rows.append({"attention": kind, "sentences": len(texts), "pooled_max_abs_err": float(err.max()),
                     "pooled_mean_abs_err": float(err.mean()), "anchor_argmax_agreement": agree,
                     "weights": "private", "seconds": time.perf_counter() - t0, "commit": git_commit()})
    print(table(rows, [("attention", "attention", "{}"), ("sentences", "n", "{}"),
                       ("pooled_max_abs_err", "max abs err", "{:.2e}"), ("pooled_mean_abs_err", "mean abs err", "{:.2e}"),
                       ("anchor_argmax_agreement", "argmax agreement", "{:.3f}"), ("seconds", "s", "{:.0f}")]))
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
