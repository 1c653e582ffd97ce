import json

import pytest

from secptune.tuning.plot import loss_limits, plot_run


def test_learning_curve_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (optional extra 'plot')")
    (tmp_path / "config.json").write_text(json.dumps({"task": "sst2", "split": "16-13", "mode": "plain"}))
    rows = [{"gen": g, "calls": 10 * (g + 1), "best_loss": 0.7 - 0.01 * g} for g in range(5)]
    rows[2]["dev_metric"] = 0.6
    rows[4]["dev_metric"] = 0.7
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = plot_run(tmp_path)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_log_is_reported(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (optional extra 'plot')")
    with pytest.raises(FileNotFoundError, match="log.jsonl: missing"):
        plot_run(tmp_path)


def test_a_run_with_its_untuned_reference_and_test_result_plots(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (optional extra 'plot')")
    cfg = {"task": "sst2", "data": "builtin", "split": "16-13", "mode": "mpc", "prompt_len": 10, "popsize": 8,
           "seed": 0}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rows = [{"untuned": True, "calls": 0, "train_loss": 0.4501, "train_metric": 0.875, "dev_metric": 0.84}]
    rows += [{"gen": g, "calls": 8 * (g + 1), "best_loss": 0.449 - 0.001 * g, "mean_loss": 0.4505 - 0.001 * g,
              "dev_metric": 0.84 + 0.01 * g} for g in range(3)]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "metrics.json").write_text(json.dumps({
        "metric": "accuracy", "test_metric": 0.78, "test_metric_se": 0.03, "zero_shot_metric": 0.74,
        "zero_shot_metric_se": 0.03, "test_examples": 200}))
    out = plot_run(tmp_path, tmp_path / "curve.png")
    assert out == tmp_path / "curve.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_loss_axis_does_not_magnify_a_tiny_change():
    lo, hi = loss_limits(0.4478, 0.4489)
    assert hi - lo >= 0.1 * 0.4489 - 1e-12 and lo < 0.4478 and hi > 0.4489
    assert loss_limits(0.3, 0.7) == (0.3, 0.7)             # a real fall keeps its own scale
