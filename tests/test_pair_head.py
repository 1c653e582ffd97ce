"""The sentence-pair head: cosine of two separately encoded sentences, threshold fitted by the client."""

import json
from pathlib import Path

import numpy as np
import pytest

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.nn.heads import pair_scores
from secptune.tuning.data import DataError, Example
from secptune.tuning.loop import ClientHead, Scorer, TuneConfig, cross_entropy
from secptune.tuning.prepare import encode_examples, load_tokenizer
from secptune.tuning.tasks import TASKS, Task, load_task
from secptune.weights.checkpoint import load_checkpoint

from helpers import secure_follows_plain

FIX = Path(__file__).parent / "fixtures"


def test_pair_scores_on_shares_match_floats():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 48)) * rng.uniform(0.2, 5, size=(6, 1))      # norms from ~1 to ~35
    b = a + rng.normal(size=(6, 48)) * rng.uniform(0.1, 3, size=(6, 1))
    want = pair_scores(a, b, 20.0)
    assert want.shape == (6, 1) and np.all(np.abs(want) <= 20.0 + 1e-9)
    ctx = Context(EngineConfig(seed=1))
    got = pair_scores(SharedTensor.from_client(ctx, a), SharedTensor.from_client(ctx, b), 20.0)
    assert got.shape == (6, 1)
    assert np.abs(got.reveal("test") - want).max() < 2e-2     # 20 x (rsqrt's 5e-4 relative, twice)


def test_fitted_threshold_is_the_maximum_likelihood_bias():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 16)
    s = np.where(labels == 1, 14.0, 11.0) + rng.normal(size=32) * 2.0
    head = ClientHead("pair", pair_class=1)
    b = head.fit(s[:, None], labels)
    p = 1 / (1 + np.exp(-(s - b)))
    assert abs(np.sum((labels == 1) - p)) < 1e-6                        # the likelihood's stationary point
    loss = lambda t: cross_entropy(head.logits(s[:, None], t), labels)   # noqa: E731
    assert loss(b) <= min(loss(b - 0.1), loss(b + 0.1))
    assert 11.0 < b < 14.0
    lg = head.logits(s[:, None], b)
    assert lg.shape == (32, 2) and np.all(lg[:, 0] == 0) and np.allclose(lg[:, 1], s - b)
    # pair_class 0 (RTE: entailment) puts the similarity on class 0
    lg0 = ClientHead("pair", pair_class=0).logits(s[:, None], b)
    assert np.all(lg0[:, 1] == 0) and np.allclose(lg0[:, 0], s - b)
    with pytest.raises(ValueError, match="both classes"):
        head.fit(s[:16, None], labels[:16])


def test_anchor_head_passes_scores_through():
    raw = np.arange(6.0).reshape(3, 2)
    head = ClientHead("anchor")
    assert head.fit(raw, np.array([0, 1, 1])) is None
    assert np.array_equal(head.logits(raw, None), raw)


def test_pair_tasks_and_their_checks(tmp_path):
    assert TASKS["mrpc"].head == "pair" and TASKS["mrpc"].pair_class == 1
    assert TASKS["rte"].head == "pair" and TASKS["rte"].pair_class == 0
    assert TASKS["sst2"].head == "anchor"
    with pytest.raises(ValueError, match="two classes"):
        Task("t", "<P> {text} <mask>", ("a", "b", "c"), ("A", "B", "C"), head="pair",
             label_map={"a": 0, "b": 1, "c": 2})
    with pytest.raises(ValueError, match="two text columns"):
        Task("t", "<P> {text} <mask>", ("a", "b"), ("A", "B"), head="pair")
    with pytest.raises(ValueError, match="head must be"):
        Task("t", "<P> {text} <mask>", ("a", "b"), ("A", "B"), head="cosine")
    path = tmp_path / "nli.json"
    path.write_text(json.dumps({"name": "nli", "template": "<P> {s1} ? <mask> , {s2}", "label_words": ["yes", "no"],
                                "anchors": ["Yes.", "No."], "text_columns": [["premise"], ["hypothesis"]],
                                "head": "pair", "pair_class": 0}))
    task = load_task(path)
    assert task.head == "pair" and task.fill_side("x y") == "<P> . x y"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "bad", "template": "<P> {text} <mask>", "label_words": ["a", "b"],
                                "anchors": ["A", "B"], "head": "pair"}))
    with pytest.raises(DataError, match="bad.json.*two text columns"):
        load_task(path)


def _model_dir():
    from secptune.weights.default import default_model_dir

    try:
        return default_model_dir()
    except Exception as e:   # noqa: BLE001
        pytest.skip(f"the packaged MiniLM is not installed ({e})")


def test_encode_examples_gives_two_rows_per_pair():
    tok = load_tokenizer(_model_dir())
    task = TASKS["rte"]
    ex = [Example(("A man is sleeping.", "Someone sleeps."), 0), Example(("Cats purr.", "Dogs bark loudly."), 1)]
    ids, mask, y = encode_examples(tok, task, ex, prompt_len=3, max_len=32, head="pair")
    assert ids.shape[0] == 4 and list(y) == [0, 1]
    unk = tok.token_to_id("[UNK]")
    for r, text in enumerate(t for e in ex for t in e.texts):
        body = tok.encode(text).ids[1:-1]
        n = int(mask[r].sum())
        assert list(ids[r, 1:4]) == [unk] * 3                    # the prompt's placeholders
        assert list(ids[r, 4:n - 1]) == body                      # then the sentence alone
    a_ids, _, _ = encode_examples(tok, task, ex, prompt_len=3, max_len=32, head="anchor")
    assert a_ids.shape[0] == 2
    with pytest.raises(ValueError, match="two text columns"):
        encode_examples(tok, TASKS["sst2"], [Example(("fine",), 1)], 3, 32, head="pair")


def setup(mode, **kw):
    cfg, p = load_checkpoint(FIX / "bert")
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 99, size=(8, 10))      # 4 examples, two sentences each
    ids[:, 0] = 2
    mask = np.ones((8, 10))
    mask[3, 7:] = 0
    tc = TuneConfig(prompt_len=3, subspace_dim=8, popsize=4, budget=12, mode=mode, engine_seed=5,
                    head="pair", pair_class=1, **kw)
    return Scorer(cfg, p, ids, mask, None, tc), np.array([0, 1, 0, 1]), tc


def test_secure_pair_loop_follows_the_plain_path_and_opens_one_score_per_pair():
    # sigma 10: the candidates' losses differ by 3.5e-4 or more, several times the secure
    # forward's fixed-point error (4e-5 here), so the ranking, and the path, is decided
    plain, labels, tc = setup("plain", sigma=10.0)
    secure, _, tcs = setup("mpc", private_weights=False, max_tokens=25, sigma=10.0)  # the two sides in different passes
    rp, rs, unmasked = secure_follows_plain(plain, secure, labels, tc, tcs)
    for gp, gs in zip(rp["history"], rs["history"]):
        err = np.abs(np.subtract(gp.losses, gs.losses)).max()
        assert np.diff(np.sort(gp.losses)).min() > 3 * err
    assert rp["head_param"] == pytest.approx(rs["head_param"], abs=5e-2)
    assert [o.shape for o in unmasked] == [(16, 1)] * 3            # 4 candidates x 4 pairs, one score each


def test_pair_scorer_rejects_an_odd_number_of_rows():
    cfg, p = load_checkpoint(FIX / "bert")
    tc = TuneConfig(prompt_len=3, subspace_dim=8, popsize=4, budget=12, head="pair")
    with pytest.raises(ValueError, match="pairs"):
        Scorer(cfg, p, np.full((3, 6), 5), np.ones((3, 6)), None, tc)
