"""Hugging Face encoder checkpoints -> parameter trees, with explicit name maps.

A model folder holds ``config.json``, ``model.safetensors`` and (optionally)
``tokenizer.json``.  Supported: BERT (``BertModel``, ``BertForMaskedLM``; names
with or without the ``bert.`` prefix) and RoBERTa (``RobertaModel``,
``RobertaForMaskedLM``; position ids offset by padding_idx + 1, ``lm_head``),
with the legacy names Hugging Face's loaders accept (``_LEGACY_SUFFIXES``).
Every tensor in the file is mapped or listed as ignored; a missing tensor, a
leftover tensor, a wrong shape or dtype, a truncated file or an unsupported
config field is an error naming the tensor or field and the file.

Linear weights are stored as [in, out] (transposed from PyTorch's [out, in])
so that layers compute x @ W + b.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint the loader cannot use; the message names the file and the tensor or field."""


@dataclass(frozen=True)
class EncoderConfig:
    arch: Literal["bert", "roberta"]
    vocab_size: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pad_token_id: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def position_offset(self) -> int:
        """RoBERTa numbers positions from padding_idx + 1; BERT from 0."""
        return self.pad_token_id + 1 if self.arch == "roberta" else 0


@dataclass
class LayerParams:
    q_w: np.ndarray
    q_b: np.ndarray
    k_w: np.ndarray
    k_b: np.ndarray
    v_w: np.ndarray
    v_b: np.ndarray
    o_w: np.ndarray
    o_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    fc1_w: np.ndarray
    fc1_b: np.ndarray
    fc2_w: np.ndarray
    fc2_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


@dataclass
class MLMHead:
    dense_w: np.ndarray
    dense_b: np.ndarray
    ln_g: np.ndarray
    ln_b: np.ndarray
    decoder_w: np.ndarray        # [hidden, vocab]
    decoder_b: np.ndarray


@dataclass
class EncoderParams:
    word_emb: np.ndarray
    pos_emb: np.ndarray
    type_emb: np.ndarray
    emb_ln_g: np.ndarray
    emb_ln_b: np.ndarray
    layers: list = field(default_factory=list)
    mlm: MLMHead | None = None


# ----------------------------------------------------------------------------
# config

_SUPPORTED_ARCHS = {
    "BertModel": "bert", "BertForMaskedLM": "bert",
    "RobertaModel": "roberta", "RobertaForMaskedLM": "roberta",
}


def read_config_json(folder: Path) -> dict:
    """The raw config.json of a model folder (public: it is sent to servers that
    never see the weights)."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{path}: missing (a model folder needs config.json)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def load_config(folder: Path) -> EncoderConfig:
    return parse_config(read_config_json(folder), Path(folder) / "config.json")


def parse_config(raw: dict, path="config.json") -> EncoderConfig:
    """An ``EncoderConfig`` from config.json's fields; errors name ``path`` and the field."""

    def need(key, kind=int):
        if key not in raw:
            raise CheckpointError(f"{path}: field {key!r} is missing")
        v = raw[key]
        if not isinstance(v, kind) or isinstance(v, bool):
            raise CheckpointError(f"{path}: field {key!r} should be {kind.__name__}, got {v!r}")
        return v

    model_type = raw.get("model_type")
    if model_type not in ("bert", "roberta"):
        raise CheckpointError(f"{path}: model_type {model_type!r} is not supported (bert, roberta)")
    for arch in raw.get("architectures") or []:
        if arch not in _SUPPORTED_ARCHS:
            raise CheckpointError(f"{path}: architecture {arch!r} is not supported ({', '.join(_SUPPORTED_ARCHS)})")
    act = raw.get("hidden_act", "gelu")
    if act != "gelu":
        raise CheckpointError(f"{path}: hidden_act {act!r} is not supported (gelu)")
    pos_type = raw.get("position_embedding_type", "absolute")
    if pos_type != "absolute":
        raise CheckpointError(f"{path}: position_embedding_type {pos_type!r} is not supported (absolute)")
    hidden, heads = need("hidden_size"), need("num_attention_heads")
    if hidden % heads:
        raise CheckpointError(f"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    eps = raw.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, (int, float)):
        raise CheckpointError(f"{path}: field 'layer_norm_eps' should be a number, got {eps!r}")
    return EncoderConfig(
        arch=model_type, vocab_size=need("vocab_size"), hidden=hidden, layers=need("num_hidden_layers"),
        heads=heads, intermediate=need("intermediate_size"), max_positions=need("max_position_embeddings"),
        type_vocab_size=need("type_vocab_size"), layer_norm_eps=float(eps),
        pad_token_id=raw.get("pad_token_id", 0 if model_type == "bert" else 1),
    )


# ----------------------------------------------------------------------------
# safetensors (F32, F16, BF16)

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}


def read_safetensors(path: Path) -> dict:
    """{name: float32 array} from a .safetensors file; BF16 is widened by hand
    (numpy has no bfloat16).  Non-float tensors (such as buffers) come back
    as they are, for the name map to ignore or reject."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    data = path.read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"{path}: too short to be a safetensors file")
    (hlen,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + hlen])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: the safetensors header is not valid JSON") from None
    base = 8 + hlen
    if base > len(data):
        raise CheckpointError(f"{path}: truncated: the header says {hlen} bytes of header, the file has "
                              f"{len(data)} bytes in all")
    ends = [info["data_offsets"][1] for name, info in header.items() if name != "__metadata__"]
    if ends and base + max(ends) > len(data):
        raise CheckpointError(f"{path}: truncated: the header describes {base + max(ends)} bytes, the file has "
                              f"{len(data)} (an interrupted download or copy?)")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (lo, hi) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        buf = data[base + lo: base + hi]
        if dt == "BF16":
            arr = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt in _DTYPES:
            arr = np.frombuffer(buf, _DTYPES[dt]).astype(np.float32)
        elif dt in ("I64", "I32"):
            arr = np.frombuffer(buf, np.int64 if dt == "I64" else np.int32)
        else:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dt}, not supported (F32, F16, BF16)")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise CheckpointError(f"{path}: tensor {name!r}: {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape)
    return out


# ----------------------------------------------------------------------------
# name maps

_LAYER_MAP = {   # field: (suffix, transpose)
    "q_w": ("attention.self.query.weight", True), "q_b": ("attention.self.query.bias", False),
    "k_w": ("attention.self.key.weight", True), "k_b": ("attention.self.key.bias", False),
    "v_w": ("attention.self.value.weight", True), "v_b": ("attention.self.value.bias", False),
    "o_w": ("attention.output.dense.weight", True), "o_b": ("attention.output.dense.bias", False),
    "ln1_g": ("attention.output.LayerNorm.weight", False), "ln1_b": ("attention.output.LayerNorm.bias", False),
    "fc1_w": ("intermediate.dense.weight", True), "fc1_b": ("intermediate.dense.bias", False),
    "fc2_w": ("output.dense.weight", True), "fc2_b": ("output.dense.bias", False),
    "ln2_g": ("output.LayerNorm.weight", False), "ln2_b": ("output.LayerNorm.bias", False),
}

_EMB_MAP = {
    "word_emb": "embeddings.word_embeddings.weight",
    "pos_emb": "embeddings.position_embeddings.weight",
    "type_emb": "embeddings.token_type_embeddings.weight",
    "emb_ln_g": "embeddings.LayerNorm.weight",
    "emb_ln_b": "embeddings.LayerNorm.bias",
}

# (field, names to try in order, transpose); the decoder weight may be tied to the word embeddings
_MLM_MAP = {
    "bert": {
        "dense_w": (["cls.predictions.transform.dense.weight"], True),
        "dense_b": (["cls.predictions.transform.dense.bias"], False),
        "ln_g": (["cls.predictions.transform.LayerNorm.weight"], False),
        "ln_b": (["cls.predictions.transform.LayerNorm.bias"], False),
        "decoder_w": (["cls.predictions.decoder.weight"], True),
        "decoder_b": (["cls.predictions.bias", "cls.predictions.decoder.bias"], False),
    },
    "roberta": {
        "dense_w": (["lm_head.dense.weight"], True),
        "dense_b": (["lm_head.dense.bias"], False),
        "ln_g": (["lm_head.layer_norm.weight"], False),
        "ln_b": (["lm_head.layer_norm.bias"], False),
        "decoder_w": (["lm_head.decoder.weight"], True),
        "decoder_b": (["lm_head.bias", "lm_head.decoder.bias"], False),
    },
}

# Legacy names that Hugging Face's loaders still accept for BERT and RoBERTa
# (``PreTrainedModel._fix_state_dict_key_on_load``): LayerNorm scales and shifts
# saved as TensorFlow-era ``gamma`` / ``beta``.  The other legacy forms these
# loaders accept are handled where they arise: names without the ``bert.`` /
# ``roberta.`` prefix (``load_checkpoint``), the decoder bias under
# ``cls.predictions.decoder.bias`` / ``lm_head.decoder.bias`` and a decoder
# weight tied to the word embeddings (``_MLM_MAP``).
_LEGACY_SUFFIXES = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}


def modern_names(tensors: dict, file) -> dict:
    """``tensors`` with legacy names (``_LEGACY_SUFFIXES``) renamed to today's; a file
    that holds a tensor under both names is an error naming both."""
    out = {}
    for name, arr in tensors.items():
        new = name
        for old, repl in _LEGACY_SUFFIXES.items():
            if name.endswith(old):
                new = name[: -len(old)] + repl
        if new != name and new in tensors:
            raise CheckpointError(f"{file}: tensor {new!r} is present twice, also under its legacy name {name!r}")
        out[new] = arr
    return out


# names a checkpoint may carry that the encoder does not use
_IGNORED = (
    "embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias",
    "cls.seq_relationship.weight", "cls.seq_relationship.bias",
)


def placeholder_params(cfg: EncoderConfig, with_mlm: bool = False) -> EncoderParams:
    """Zeros of every encoder tensor's shape (and the masked-LM head's, ``with_mlm``):
    what a server that never sees the weights passes where the model owner shares
    the real ones."""
    d, f = cfg.hidden, cfg.intermediate
    z = lambda *shape: np.zeros(shape, np.float32)      # noqa: E731
    layers = [LayerParams(q_w=z(d, d), q_b=z(d), k_w=z(d, d), k_b=z(d), v_w=z(d, d), v_b=z(d), o_w=z(d, d),
                          o_b=z(d), ln1_g=z(d), ln1_b=z(d), fc1_w=z(d, f), fc1_b=z(f), fc2_w=z(f, d), fc2_b=z(d),
                          ln2_g=z(d), ln2_b=z(d)) for _ in range(cfg.layers)]
    head = MLMHead(dense_w=z(d, d), dense_b=z(d), ln_g=z(d), ln_b=z(d), decoder_w=z(d, cfg.vocab_size),
                   decoder_b=z(cfg.vocab_size)) if with_mlm else None
    return EncoderParams(word_emb=z(cfg.vocab_size, d), pos_emb=z(cfg.max_positions, d),
                         type_emb=z(cfg.type_vocab_size, d), emb_ln_g=z(d), emb_ln_b=z(d), layers=layers, mlm=head)


def load_checkpoint(folder, *, with_mlm: bool | None = None) -> tuple:
    """(EncoderConfig, EncoderParams) from a Hugging Face model folder.

    ``with_mlm``: None loads the masked-LM head when the file has one; True
    requires it; False ignores it.
    """
    folder = Path(folder)
    cfg = load_config(folder)
    file = folder / "model.safetensors"
    tensors = modern_names(read_safetensors(file), file)
    prefix = cfg.arch + "."
    strip = any(k.startswith(prefix) for k in tensors)
    used: set = set()

    def take(name, shape, transpose=False, prefixed=True):
        key = (prefix + name) if (strip and prefixed) else name
        if key not in tensors:
            raise CheckpointError(f"{file}: tensor {key!r} is missing")
        arr = tensors[key]
        if arr.dtype.kind != "f":
            raise CheckpointError(f"{file}: tensor {key!r} has integer dtype {arr.dtype}, expected a float")
        want = tuple(reversed(shape)) if transpose else tuple(shape)   # PyTorch stores [out, in]
        if arr.shape != want:
            raise CheckpointError(f"{file}: tensor {key!r} has shape {arr.shape}, expected {want}")
        used.add(key)
        return np.ascontiguousarray(arr.T) if transpose else arr

    d, f = cfg.hidden, cfg.intermediate
    emb_shapes = {
        "word_emb": (cfg.vocab_size, d), "pos_emb": (cfg.max_positions, d),
        "type_emb": (cfg.type_vocab_size, d), "emb_ln_g": (d,), "emb_ln_b": (d,),
    }
    emb = {k: take(n, emb_shapes[k]) for k, n in _EMB_MAP.items()}
    shapes = {"q_w": (d, d), "k_w": (d, d), "v_w": (d, d), "o_w": (d, d), "fc1_w": (d, f), "fc2_w": (f, d),
              "fc1_b": (f,)}
    layers = []
    for i in range(cfg.layers):
        fields = {}
        for key, (suffix, tr) in _LAYER_MAP.items():
            shape = shapes.get(key, (d,))
            fields[key] = take(f"encoder.layer.{i}.{suffix}", shape, tr)
        layers.append(LayerParams(**fields))
    params = EncoderParams(**emb, layers=layers)

    head_names = {n for names, _ in _MLM_MAP[cfg.arch].values() for n in names}
    has_head = any(k in tensors for k in head_names)
    if with_mlm and not has_head:
        raise CheckpointError(f"{file}: no masked-LM head ({cfg.arch}) in this checkpoint")
    if has_head and with_mlm is not False:
        head = {}
        for key, (names, tr) in _MLM_MAP[cfg.arch].items():
            present = [n for n in names if n in tensors]
            if key == "decoder_w" and not present:
                head[key] = np.ascontiguousarray(emb["word_emb"].T)     # tied to the word embeddings
                continue
            if not present:
                raise CheckpointError(f"{file}: tensor {names[0]!r} is missing")
            shape = {"dense_w": (d, d), "decoder_w": (d, cfg.vocab_size), "decoder_b": (cfg.vocab_size,)}.get(key, (d,))
            head[key] = take(present[0], shape, tr, prefixed=False)
            used.update(present)
        params.mlm = MLMHead(**head)
    elif has_head:
        used.update(k for k in tensors if k in head_names)

    ignored = {n for n in tensors if n in _IGNORED or (strip and n[len(prefix):] in _IGNORED)}
    leftover = sorted(set(tensors) - used - ignored)
    if leftover:
        raise CheckpointError(f"{file}: tensors not mapped and not known to be ignorable: {', '.join(leftover[:8])}"
                              + (" ..." if len(leftover) > 8 else ""))
    return cfg, params
