"""The masked-LM head (Black-Box Tuning's): label-word logits at the template's mask token.

The tiny random-weight BERT with a masked-LM head (fixtures/bert_mlm, vocabulary
of 99) gets a WordPiece tokenizer built here over words of its own, so that
texts, templates and label words tokenise as they would with a real checkpoint.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from secptune.engine import CLIENT
from secptune.nn import encoder as E
from secptune.tuning.data import Example
from secptune.tuning.loop import Scorer, TuneConfig, mask_positions
from secptune.tuning.prepare import encode_examples, load_tokenizer, verbalizer
from secptune.tuning.run import RunSpec, tune_run
from secptune.tuning.tasks import TASKS, Task
from secptune.weights.checkpoint import load_checkpoint

FIX = Path(__file__).parent / "fixtures"
WORDS = ("it was bad great good movie film a the and not fun dull very this is of to plot acting story "
         "long boring sweet funny sad ##ly ##s i liked hated").split()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """fixtures/bert_mlm with a WordPiece tokenizer.json of at most its 99 tokens."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    folder = tmp_path_factory.mktemp("bert_mlm_tok")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(FIX / "bert_mlm" / name, folder / name)
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", ",", ":"]
                                        + WORDS)}
    assert len(vocab) <= json.loads((folder / "config.json").read_text())["vocab_size"]
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])   # matched whole in text, as in BERT's
    tok.save(str(folder / "tokenizer.json"))
    return folder


EXAMPLES = [Example(("a very good movie and a sweet story .",), 1), Example(("dull , boring plot .",), 0),
            Example(("i liked the acting .",), 1), Example(("this film is long and not fun .",), 0)]


def test_inputs_keep_the_template_and_its_mask(model_dir):
    tok = load_tokenizer(model_dir)
    task = TASKS["sst2"]                         # "<P> . {text} . It was <mask> ."
    long = Example((" ".join(["the acting of this film is very long and boring"] * 6),), 0)
    ids, mask, y = encode_examples(tok, task, EXAMPLES + [long], prompt_len=4, max_len=24, head="mlm")
    assert ids.shape[1] <= 24 and list(y) == [1, 0, 1, 0, 0]
    pos = mask_positions(ids, mask, tok.token_to_id("[MASK]"))
    for r in range(len(ids)):
        n = int(mask[r].sum())
        body = [tok.id_to_token(int(i)) for i in ids[r, 5:n - 1]]      # after [CLS] and 4 placeholders
        assert body[-5:] == [".", "it", "was", "[MASK]", "."]            # the template's tail survives
        assert pos[r] == n - 3
    # the long text was cut (not the template): its first words are still there
    assert [tok.id_to_token(int(i)) for i in ids[4, 5:9]] == ["the", "acting", "of", "this"]
    with pytest.raises(ValueError, match="template alone"):
        encode_examples(tok, task, EXAMPLES, prompt_len=4, max_len=9, head="mlm")


def test_verbalizer_needs_one_token_per_label_word(model_dir):
    tok = load_tokenizer(model_dir)
    v = verbalizer(tok, TASKS["sst2"])
    assert [tok.id_to_token(int(i)) for i in v.word_ids] == ["bad", "great"]
    assert tok.id_to_token(v.mask_id) == "[MASK]"
    bad = Task("t", "<P> . {text} . It was <mask> .", ("bad", "badly"), ("a", "b"))
    with pytest.raises(ValueError, match="'badly' is 2 tokens"):
        verbalizer(tok, bad)
    with pytest.raises(ValueError, match="exactly one <mask>"):
        Task("t", "<P> . {text} .", ("bad", "great"), ("a", "b"), head="mlm")


def test_mask_positions_name_a_row_without_a_mask():
    ids = np.array([[2, 4, 5, 3], [2, 5, 5, 3]])
    with pytest.raises(ValueError, match="row 1 has 0 mask tokens"):
        mask_positions(ids, np.ones((2, 4)), 4)


def _sst2_inputs(model_dir):
    """(config, params, verbalizer, ids, key mask) of EXAMPLES on the sst2 template, prompt length 4."""
    cfg, p = load_checkpoint(model_dir)
    tok = load_tokenizer(model_dir)
    v = verbalizer(tok, TASKS["sst2"])
    ids, mask, _ = encode_examples(tok, TASKS["sst2"], EXAMPLES, prompt_len=4, max_len=32, head="mlm")
    return cfg, p, v, ids, mask


def test_plain_scores_are_the_label_word_logits_at_the_mask(model_dir):
    cfg, p, v, ids, mask = _sst2_inputs(model_dir)
    tc = TuneConfig(prompt_len=4, subspace_dim=8, popsize=2, budget=4, head="mlm")
    prompts = np.random.default_rng(0).normal(size=(2, 4, cfg.hidden)) * 0.1
    got = Scorer(cfg, p, ids, mask, v, tc)(prompts)
    # reference: the whole vocabulary's logits at the mask, then the label words' columns
    h = E.encode(p, E.add_prompt(E.embed(p, cfg, ids), prompts), np.tile(mask, (2, 1)), cfg)
    pos = np.tile(np.argmax(ids == v.mask_id, axis=1), 2)
    full = E.mlm_logits(p.mlm, h[np.arange(8), pos], np.arange(cfg.vocab_size), cfg.layer_norm_eps)
    np.testing.assert_allclose(got.reshape(8, 2), full[:, v.word_ids], atol=1e-4)


@pytest.mark.parametrize("private", [False, True])
def test_secure_mlm_scores_match_plain_and_only_they_are_opened(model_dir, private):
    cfg, p, v, ids, mask = _sst2_inputs(model_dir)
    kw = dict(prompt_len=4, subspace_dim=8, popsize=3, budget=12, head="mlm")
    plain = Scorer(cfg, p, ids, mask, v, TuneConfig(mode="plain", **kw))
    secure = Scorer(cfg, p, ids, mask, v, TuneConfig(mode="mpc", private_weights=private, engine_seed=5,
                                                     max_tokens=40, **kw))      # several passes
    if private:           # the head went to the servers cut to the label words, as shares
        assert secure.weights.mlm.decoder_w.shape == (cfg.hidden, 2)
        assert not isinstance(secure.weights.mlm.decoder_w, np.ndarray)
    prompts = np.random.default_rng(1).normal(size=(3, 4, cfg.hidden)) * 2.0
    want = plain(prompts)
    with secure.ctx.chan.measure() as m:
        got = secure(prompts, tag="gen0/scores")
    assert got.shape == want.shape == (3, 4, 2)
    assert np.abs(got - want).max() < 5e-3
    # the examples' scores differ far beyond the error (a random tiny model: the prompts move them little)
    assert np.ptp(want, axis=1).max() > 20 * np.abs(got - want).max()
    unmasked = [o for o in m.openings if not o.masked]
    assert [(o.shape, o.receivers, o.tag) for o in unmasked] == [((12, 2), (CLIENT,), "gen0/scores")]


def test_a_model_without_a_masked_lm_head_is_refused(model_dir):
    cfg, p = load_checkpoint(FIX / "bert")
    tok = load_tokenizer(model_dir)
    v = verbalizer(tok, TASKS["sst2"])
    tc = TuneConfig(prompt_len=4, subspace_dim=8, popsize=2, budget=4, head="mlm")
    with pytest.raises(ValueError, match="needs a checkpoint with one"):
        Scorer(cfg, p, np.full((1, 8), 4), np.ones((1, 8)), v, tc)


def test_tune_run_with_the_mlm_head(model_dir, tmp_path):
    spec = RunSpec(task="sst2", data="builtin", split="8-1", model=str(model_dir), mode="mpc", prompt_len=4,
                   subspace_dim=8, popsize=2, budget=4, max_len=32, attention="softmax", features=16,
                   weights="private", eval_every=1, patience=0, seed=0, test_limit=6, head="mlm", sigma=1.0)
    m = tune_run(spec, tmp_path / "run", stream=open("/dev/null", "w"))
    assert m["head"] == "mlm" and m["mode"] == "mpc" and m["generations"] == 2
    assert 0.0 <= m["test_metric"] <= 1.0 and 0.0 <= m["zero_shot_metric"] <= 1.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["head"] == "mlm"


def test_cli_names_the_checkpoint_without_a_masked_lm_head(tmp_path, capsys):
    from secptune.cli import main

    assert main(["tune", "--task", "sst2", "--data", "builtin", "--head", "mlm", "--mode", "plain",
                 "--budget", "10", "--popsize", "5", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors: no masked-LM head" in err
