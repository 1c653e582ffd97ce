"""From a task, a model folder and a data folder to tokenised inputs and anchors.

Inputs follow Black-Box Tuning: [CLS], L placeholder tokens (the prompt is
added to their embeddings), the filled template, [SEP]; capped at
``max_len`` tokens by cutting the example text, never the template.  The
embedding head compares the mean-pooled sentence embedding with each class's
anchor text, embedded once by the same model; the pair head (two-sentence
tasks) encodes each sentence on its own after the prompt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from secptune.nn import encoder as E


def load_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the model folder has no tokenizer.json")
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()        # the packaged MiniLM's tokenizer pads and cuts to 128 otherwise
    tok.no_truncation()
    return tok


def _special(tok, *names):
    for n in names:
        i = tok.token_to_id(n)
        if i is not None:
            return i
    raise ValueError(f"tokenizer has none of the tokens {names}")


def pad_batch(seqs: list) -> tuple:
    """Token id lists -> (ids [b, n] padded with 0, key mask [b, n]), n the longest."""
    n = max(map(len, seqs))
    ids = np.zeros((len(seqs), n), np.int64)
    mask = np.zeros((len(seqs), n))
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return ids, mask


def encode_examples(tok, task, examples, prompt_len: int, max_len: int, head: str = "anchor"):
    """ids [R, n], key mask [R, n] (n = the longest sequence), labels [E].

    ``head`` anchor: one row per example (R = E), the filled template.  pair:
    two rows per example (R = 2E; rows 2e and 2e + 1), each sentence after
    the prompt (``task.pair_template``)."""
    cls_id, sep_id = _special(tok, "[CLS]", "<s>"), _special(tok, "[SEP]", "</s>")
    unk_id = _special(tok, "[UNK]", "<unk>")
    mask_tok = "[MASK]" if tok.token_to_id("[MASK]") is not None else "<mask>"
    room = max_len - 2 - prompt_len
    if room < 1:
        raise ValueError(f"max_len {max_len} leaves no room after a prompt of {prompt_len} tokens")
    if head == "pair":
        task.check_pair()
        texts = [task.fill_side(t) for e in examples for t in e.texts]
    elif head == "anchor":
        texts = [task.fill(e.texts) for e in examples]
    else:
        raise ValueError(f"head must be 'anchor' or 'pair', got {head!r}")
    seqs = []
    for text in texts:
        text = text.replace("<P>", "").replace("<mask>", mask_tok)
        # the anchor templates' "<P> ." and " <mask> ." ends go; a pair sentence keeps its own full stop
        text = (text.lstrip(" .") if head == "pair" else text.strip(" .")) or mask_tok
        body = tok.encode(text).ids[1:-1]
        seqs.append([cls_id] + [unk_id] * prompt_len + body[:room] + [sep_id])
    ids, mask = pad_batch(seqs)
    return ids, mask, np.array([e.label for e in examples])


def anchor_embeddings(tok, cfg, params, task) -> np.ndarray:
    """Mean-pooled embeddings of the task's anchor texts (plaintext, public inputs)."""
    ids, mask = pad_batch([tok.encode(a).ids for a in task.anchors])
    return E.mean_pool(E.encode(params, E.embed(params, cfg, ids), mask, cfg), mask)
