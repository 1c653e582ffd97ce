"""From a task, a model folder and a data folder to tokenised inputs and anchors.

Inputs follow Black-Box Tuning: [CLS], L placeholder tokens (the prompt is
added to their embeddings), the filled template, [SEP], capped at
``max_len`` tokens.  The embedding head compares the mean-pooled sentence
embedding with each class's anchor text, embedded once by the same model;
the pair head (two-sentence tasks) encodes each sentence on its own after
the prompt; both cut a long input at its end.  The masked-LM head reads the
logits of the label words at the template's mask token, so its inputs are
capped by cutting the example texts (the longest first), never the template.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    the prompt (``task.pair_template``).  mlm: one row per example, the whole
    filled template with its mask token, the texts cut to fit (``_fit_texts``)."""
    cls_id, sep_id = _special(tok, "[CLS]", "<s>"), _special(tok, "[SEP]", "</s>")
    unk_id = _special(tok, "[UNK]", "<unk>")
    mask_tok = "[MASK]" if tok.token_to_id("[MASK]") is not None else "<mask>"
    room = max_len - 2 - prompt_len
    if room < 1:
        raise ValueError(f"max_len {max_len} leaves no room after a prompt of {prompt_len} tokens")
    if head == "mlm":
        task.check_mlm()
        bodies = [_fit_texts(tok, task, e.texts, mask_tok, room) for e in examples]
    elif head in ("pair", "anchor"):
        if head == "pair":
            task.check_pair()
            texts = [task.fill_side(t) for e in examples for t in e.texts]
        else:
            texts = [task.fill(e.texts) for e in examples]
        bodies = []
        for text in texts:
            text = text.replace("<P>", "").replace("<mask>", mask_tok)
            # the anchor templates' "<P> ." and " <mask> ." ends go; a pair sentence keeps its own full stop
            text = (text.lstrip(" .") if head == "pair" else text.strip(" .")) or mask_tok
            bodies.append(tok.encode(text).ids[1:-1][:room])
    else:
        raise ValueError(f"head must be one of anchor, pair, mlm, got {head!r}")
    ids, mask = pad_batch([[cls_id] + [unk_id] * prompt_len + body + [sep_id] for body in bodies])
    return ids, mask, np.array([e.label for e in examples])


def _template_ids(tok, task, texts: tuple, mask_tok: str) -> list:
    """Token ids of the filled template without the prompt marker and special tokens."""
    text = task.fill(texts).replace("<P>", "").replace("<mask>", mask_tok).lstrip(" .")
    return tok.encode(text, add_special_tokens=False).ids


def _fit_texts(tok, task, texts: tuple, mask_tok: str, room: int) -> list:
    """The template filled with ``texts`` in at most ``room`` tokens: the longest text is
    cut (by tokens, decoded back to text) until the whole fits, so the template and its
    mask token stay."""
    texts = list(texts)
    body = _template_ids(tok, task, tuple(texts), mask_tok)
    for _ in range(64):
        if len(body) <= room:
            return body
        pieces = [tok.encode(t, add_special_tokens=False).ids for t in texts]
        j = int(np.argmax([len(ids) for ids in pieces]))
        if not pieces[j]:
            break
        texts[j] = tok.decode(pieces[j][:max(0, len(pieces[j]) - (len(body) - room))])
        body = _template_ids(tok, task, tuple(texts), mask_tok)
    raise ValueError(f"task {task.name}: the template alone takes {len(body)} tokens, more than the "
                     f"{room} that max_len leaves after the prompt")


@dataclass(frozen=True)
class Verbalizer:
    """The masked-LM head's public data: the mask token's id and one token id per class."""

    mask_id: int
    word_ids: np.ndarray


def verbalizer(tok, task) -> Verbalizer:
    """Each label word as one token of this tokenizer (with the leading space it has in
    running text, which RoBERTa's BPE marks); an error names a word that is not one token."""
    mask_id = _special(tok, "[MASK]", "<mask>")
    ids = []
    for w in task.label_words:
        got = tok.encode(" " + w, add_special_tokens=False).ids
        if len(got) != 1:
            raise ValueError(f"task {task.name}: label word {w!r} is {len(got)} tokens for this tokenizer; "
                             f"the masked-LM head needs one token per label word")
        ids.append(got[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"task {task.name}: two label words are the same token for this tokenizer")
    return Verbalizer(mask_id, np.array(ids, np.int64))


def anchor_embeddings(tok, cfg, params, task) -> np.ndarray:
    """Mean-pooled embeddings of the task's anchor texts (plaintext, public inputs)."""
    ids, mask = pad_batch([tok.encode(a).ids for a in task.anchors])
    return E.mean_pool(E.encode(params, E.embed(params, cfg, ids), mask, cfg), mask)
