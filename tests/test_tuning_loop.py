"""The tuning loop on a tiny checkpoint: plain and secure take the same CMA-ES path."""

from pathlib import Path

import numpy as np
import pytest

from secptune.tuning.loop import Projection, Scorer, TuneConfig, cross_entropy, tune
from secptune.weights.checkpoint import load_checkpoint

from helpers import secure_follows_plain

FIX = Path(__file__).parent / "fixtures"


def setup(mode, **kw):
    cfg, p = load_checkpoint(FIX / "bert")
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 99, size=(4, 10))
    ids[:, 0] = 2
    mask = np.ones((4, 10))
    mask[2, 8:] = 0
    anchors = rng.normal(size=(2, cfg.hidden))
    tc = TuneConfig(prompt_len=3, subspace_dim=8, popsize=4, budget=12, mode=mode, engine_seed=5, **kw)
    return Scorer(cfg, p, ids, mask, anchors, tc), np.array([0, 1, 0, 1]), tc


def test_cross_entropy():
    s = np.array([[0.0, 0.0], [10.0, 0.0]])
    assert cross_entropy(s, np.array([0, 0])) == pytest.approx((np.log(2) + np.log1p(np.exp(-10))) / 2)


def test_projection_shape_and_scale():
    proj = Projection(d=500, L=5, hidden=32, sigma_emb=0.05, seed=1)
    p = proj(np.ones((3, 500)))
    assert p.shape == (3, 5, 32)
    assert proj.A.std() == pytest.approx(0.05 / np.sqrt(500), rel=0.05)


def test_plain_loop_spends_the_budget_and_keeps_the_best():
    scorer, labels, tc = setup("plain")
    res = tune(scorer, labels, tc)
    assert len(res["history"]) == 3 and scorer.calls == 12
    assert res["loss"] == min(g.best_loss for g in res["history"])
    assert res["prompt"].shape == (3, 32)


def test_secure_loop_follows_the_plain_path_and_opens_only_scores():
    plain, labels, tc = setup("plain")
    secure, _, tcs = setup("mpc", private_weights=True)
    _, _, unmasked = secure_follows_plain(plain, secure, labels, tc, tcs)
    assert [o.shape for o in unmasked] == [(16, 2)] * 3


def test_secure_scores_do_not_depend_on_how_the_batch_is_cut():
    whole, _, _ = setup("mpc", private_weights=False)
    cut, _, _ = setup("mpc", private_weights=False, max_tokens=25)      # 2 sequences per pass
    prompts = np.random.default_rng(3).normal(size=(3, 3, 32)) * 0.05
    a, b = whole(prompts), cut(prompts)
    assert a.shape == b.shape == (3, 4, 2)
    assert np.abs(a - b).max() <= 1e-2


def test_passes_cover_every_row_once_padded_to_their_longest():
    scorer, _, _ = setup("mpc", private_weights=False, max_tokens=25)
    scorer.mask = np.zeros((4, 10))
    for e, n in enumerate([10, 4, 7, 5]):
        scorer.mask[e, :n] = 1
    passes = list(scorer.passes(3))
    rows = np.concatenate([r for r, _ in passes])
    assert sorted(rows) == list(range(12))
    lengths = scorer.mask.sum(1)
    for r, width in passes:
        assert width == lengths[r % 4].max()
        assert len(r) * width <= 25 or len(r) == 1
    # short rows share passes: 12 rows of 4-10 tokens in fewer passes than one per row
    assert len(passes) < 12 and sum(len(r) * w for r, w in passes) < 12 * 10


def test_bad_config():
    with pytest.raises(ValueError, match="mode"):
        TuneConfig(mode="fast")
    with pytest.raises(ValueError, match="budget"):
        TuneConfig(budget=5, popsize=20)
