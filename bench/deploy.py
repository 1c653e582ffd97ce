"""The MiniLM encoder with the three servers as processes on loopback (TLS) vs in one process.

    python -m bench.deploy [--quick] [--weights public|private] [--out FILE]

Batch of 32 sequences of 64 tokens (quick: 4 x 32), the same inputs as
``bench.encoder``.  In-process: the simulation (every party in this
process).  Loopback: ``secptune.deploy`` with fresh certificates, three
server processes (plus a model-owner process for private weights) and this
process as the client; its seconds are the client's from the first shared
input to the opened scores.  One JSON line per setting: wall seconds,
rounds, bytes per server by the engine's count and on the sockets (payload
and whole frames), the scores' agreement with the in-process run, and the
time the network model gives for the paper's LAN and WAN from the
in-process measurement.  The machine's kernel has no ``sch_netem``, so
links shaped to the paper's LAN and WAN cannot be measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from secptune.deploy import encode, run_client
from secptune.engine import Context, EngineConfig
from secptune.engine.network import LAN, WAN
from secptune.engine.transport import write_local_config
from secptune.nn import encoder as E
from secptune.weights.checkpoint import load_checkpoint, read_config_json
from secptune.weights.default import default_model_dir

from .common import git_commit, machine, write_jsonl
from .encoder import batch_ids


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p + 10 if p < 60000 else 20000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.deploy", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--weights", choices=["public", "private"], default="public")
    p.add_argument("--data", default=os.environ.get("SECPTUNE_DATA", "../shared/data"))
    p.add_argument("--out")
    args = p.parse_args(argv)
    batch, seq_len = (4, 32) if args.quick else (32, 64)
    mdir = default_model_dir()
    cfg, params = load_checkpoint(mdir)
    ids, mask, source = batch_ids(mdir, Path(args.data), batch, seq_len)
    private = {"x": E.embed(params, cfg, ids)}
    anchors = np.random.default_rng(0).normal(size=(2, cfg.hidden))
    job = {"model": str(mdir), "config": read_config_json(mdir), "private": args.weights == "private",
           "shape": [batch, seq_len],
           "mask": mask.tolist(), "anchors": anchors.tolist(), "attention": "softmax"}

    ctx = Context(EngineConfig(seed=1))
    t0 = time.perf_counter()
    sim = encode(ctx, None, job, private)
    sim_s = time.perf_counter() - t0
    cost = ctx.chan.cost()
    rows = [{"setting": "in-process", "weights": args.weights, "batch": batch, "seq_len": seq_len,
             "seconds": sim_s, "rounds": cost.rounds, "engine_bytes_per_server": cost.max_server_bytes,
             "lan_model_s": LAN.seconds(cost, sim_s), "wan_model_s": WAN.seconds(cost, sim_s)}]
    print(f"in-process: {sim_s:.2f} s, {cost.rounds} rounds, {cost.max_server_bytes / 1e9:.2f} GB per server",
          flush=True)

    with tempfile.TemporaryDirectory() as d:
        names = ("S0", "S1", "S2", "client") + (("model-owner",) if args.weights == "private" else ())
        cfg_path = write_local_config(Path(d), _port(), timeout=600, names=names)
        ids_ = (0, 1, 2) + ((4,) if args.weights == "private" else ())
        procs = {i: subprocess.Popen([sys.executable, "-c", "import sys; from secptune.deploy import serve; "
                                      "serve(int(sys.argv[1]), sys.argv[2], seed=1)", str(i), str(cfg_path)],
                                     stderr=subprocess.PIPE, text=True) for i in ids_}
        out, stats = run_client(cfg_path, "encode", job, private, seed=1)
        server_stats = {}
        for i, proc in procs.items():
            _, err = proc.communicate(timeout=600)
            server_stats[i] = json.loads([ln for ln in err.splitlines() if ln.startswith("{")][-1])
    servers = [server_stats[i] for i in (0, 1, 2)]
    rows.append({"setting": "loopback TLS, 3 server processes", "weights": args.weights, "batch": batch,
                 "seq_len": seq_len, "seconds": stats["run_s"], "rounds": stats["rounds"],
                 "engine_bytes_per_server": max(s["engine_bytes_sent"] for s in servers),
                 "socket_payload_bytes_per_server": max(s["socket_payload_bytes_sent"] for s in servers),
                 "socket_frame_bytes_per_server": max(s["socket_frame_bytes_sent"] for s in servers),
                 "scores_equal_in_process": bool(np.array_equal(out["scores"], sim["scores"]))})
    print(f"loopback: {stats['run_s']:.2f} s, {stats['rounds']} rounds, "
          f"{rows[-1]['socket_payload_bytes_per_server'] / 1e9:.2f} GB per server on the sockets "
          f"({rows[-1]['socket_frame_bytes_per_server'] / 1e9:.2f} GB with frame headers); scores equal: "
          f"{rows[-1]['scores_equal_in_process']}", flush=True)
    for r in rows:
        r.update(commit=git_commit(), inputs=source, **machine())
    write_jsonl(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
