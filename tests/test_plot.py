import json

import pytest

from secptune.tuning.plot import plot_run


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
