"""The MiniLM encoder: plaintext float32 vs secure, public vs private weights, softmax vs RFA.

    python -m bench.encoder [--quick] [--out FILE] [--data DIR]

Batch of 32 sequences of 64 tokens (quick: 4 x 32): real SST-2 test
sentences, tokenized, padded or cut to the length (random token ids where
the data folder is absent).  The client computes the embedding-layer output
in plaintext and shares it; the servers run the six layers and mean pooling.
One JSON line per configuration: mode, weights, attention, batch, seq_len,
median_s, rounds, bytes_per_party (max over servers), ratio_to_plain (to
the float32 plaintext forward of the same batch, measured in the same run)
and max_abs_err of the pooled embedding against the float64 plaintext
forward with the same attention.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.nn import encoder as E
from secptune.nn.attention import AttentionConfig
from secptune.weights.checkpoint import load_checkpoint
from secptune.weights.default import default_model_dir

from .common import git_commit, machine, table, timed, write_jsonl


def batch_ids(model_dir: Path, data: Path, batch: int, seq_len: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    path = data / "k-shot" / "SST-2" / "test.tsv"
    if path.exists():
        texts = [ln.split("\t")[0] for ln in path.read_text(encoding="utf-8").splitlines()[1:]]
        # repeat sentences to fill long sequences: the benchmark wants seq_len real tokens
        ids = np.zeros((batch, seq_len), np.int64)
        for i in range(batch):
            toks = []
            j = i
            while len(toks) < seq_len:
                toks += tok.encode(texts[j % len(texts)]).ids[1:-1]
                j += batch
            ids[i] = [101] + toks[:seq_len - 2] + [102]
        source = f"SST-2 test sentences from {path}"
    else:
        ids = np.random.default_rng(0).integers(1000, 30000, size=(batch, seq_len))
        source = "random token ids (data folder absent)"
    return ids, np.ones((batch, seq_len)), source


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.encoder", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--features", type=int, default=64)
    args = p.parse_args(argv)
    batch, seq_len = (4, 32) if args.quick else (32, 64)
    mdir = default_model_dir()
    cfg, params = load_checkpoint(mdir)
    ids, mask, source = batch_ids(mdir, Path(args.data), batch, seq_len)
    x64 = E.embed(params, cfg, ids)

    p32 = params   # float32 weights as loaded
    x32 = x64.astype(np.float32)
    plain_s, _, _ = timed(lambda: E.mean_pool(E.encode(p32, x32, mask, cfg), mask), 5)
    rows = [{"mode": "plain", "weights": "public", "attention": "softmax", "batch": batch, "seq_len": seq_len,
             "median_s": plain_s, "rounds": 0, "bytes_per_party": 0, "ratio_to_plain": 1.0, "dtype": "float32"}]
    for weights in ("public", "private"):
        for kind in ("softmax", "rfa"):
            att = AttentionConfig(kind, features=args.features)
            ref = E.mean_pool(E.encode(params, x64, mask, cfg, att), mask)
            ctx = Context(EngineConfig(seed=1))
            sp = E.share_weights(ctx, params, private=weights == "private")
            sx = SharedTensor.from_client(ctx, x64)

            def run():
                return E.mean_pool(E.encode(sp, sx, mask, cfg, att), mask)

            with ctx.chan.measure() as m:
                out = run()
            secs, _, _ = timed(run, 1 if not args.quick else 2, warmup=0)
            err = float(np.abs(out.reveal("bench/pooled") - ref).max())
            rows.append({"mode": "secure", "weights": weights, "attention": kind, "batch": batch,
                         "seq_len": seq_len, "median_s": secs, "rounds": m.cost.rounds,
                         "bytes_per_party": m.cost.max_server_bytes, "ratio_to_plain": secs / plain_s,
                         "max_abs_err": err, "features": args.features if kind == "rfa" else None})
            print(f"{weights} {kind}: {secs:.1f} s", flush=True)
    meta = {"commit": git_commit(), "model": "all-MiniLM-L6-v2", "inputs": source, **machine()}
    for r in rows:
        r.update(meta)
    print(table(rows, [("mode", "mode", "{}"), ("weights", "weights", "{}"), ("attention", "attention", "{}"),
                       ("median_s", "s", "{:.3f}"), ("ratio_to_plain", "x plain f32", "{:.0f}"),
                       ("rounds", "rounds", "{}"), ("bytes_per_party", "B/party", "{:.3g}"),
                       ("max_abs_err", "max err", "{:.1e}")]))
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
