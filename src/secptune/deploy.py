"""Parties as processes: a job's program run by every party over TLS links.

A job is a name from ``JOBS`` and public JSON arguments, chosen by the
client (data owner) and sent to every server after the links are up; each
party then runs the same program on its own view (``engine.party``), with
real data only where it holds it: the client its inputs, the model owner
its weights.  Nothing but public arguments travels in the job message (JSON,
never pickle: a server does not execute what a client sends).

    secptune party --id 0 --config parties.toml      # a server: waits for a job, runs it, exits
    secptune local-cluster --folder F                # certificates, config, three servers on loopback

``run_client`` is the client's side (tests, ``secptune remote``).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from secptune.engine import CLIENT, MODEL_OWNER, EngineConfig, SharedTensor
from secptune.engine.comm import PARTY_NAMES
from secptune.engine.party import LinkError, party_context
from secptune.engine.transport import Network, load_config

# ----------------------------------------------------------------------------
# programs: f(ctx, me, args, private) -> what the client keeps; ``private`` is the
# client's own input.  ``me`` None: the one-process simulation, which plays every party.


def _is(me, party) -> bool:
    return me is None or me == party


def selftest(ctx, me, args, private):
    """Share two vectors, multiply, compare, open the results to the client
    (``repeat`` times: a longer job for fault tests)."""
    n = int(args["n"])
    x = SharedTensor.from_client(ctx, private["x"] if _is(me, CLIENT) else np.zeros(n))
    y = SharedTensor.from_client(ctx, private["y"] if _is(me, CLIENT) else np.zeros(n))
    for _ in range(int(args.get("repeat", 1))):
        out = {"xy": (x * y).reveal("xy", to=CLIENT), "lt": x.lt(y).reveal("lt", to=CLIENT)}
    return out


def _model(me, args):
    """(config, params) for a job: with public weights every party reads the model
    folder; with private weights only the model owner does, and the others build
    zeros of the shapes from the public configuration in the job (``config``).
    The masked-LM head (``args['head']`` mlm) is loaded, or its zeros built, too."""
    from secptune.weights.checkpoint import load_checkpoint, parse_config, placeholder_params

    mlm = args.get("head") == "mlm"
    if not args["private"] or _is(me, MODEL_OWNER):
        return load_checkpoint(args["model"], with_mlm=True if mlm else None)
    cfg = parse_config(args["config"], "the job's config")
    return cfg, placeholder_params(cfg, with_mlm=mlm)


def _head_data(args):
    """The head's public data from a tuning job: the anchor embeddings, or for the
    masked-LM head a verbalizer (the label words' token ids; the mask token's id
    only matters where the token ids are real, at the client)."""
    if args.get("head") == "mlm":
        from secptune.tuning.prepare import Verbalizer

        return Verbalizer(int(args["mask_id"]), np.asarray(args["word_ids"], np.int64))
    return np.asarray(args["anchors"], np.float64)


def encode(ctx, me, args, private):
    """The encoder on shares: anchor scores of the client's embedded inputs [b, n, hidden].
    Public weights: every party reads the model folder.  Private weights
    (``args['private']``): the model owner reads it and shares the layers; the
    servers know only the configuration (``args['config']``)."""
    from secptune.nn import encoder as E
    from secptune.nn.heads import anchor_scores
    from secptune.tuning.run import spec_attention

    cfg, params = _model(me, args)
    shape = tuple(args["shape"])
    mask = np.asarray(args["mask"], np.float64)
    anchors = np.asarray(args["anchors"], np.float64)
    w = E.share_weights(ctx, params, private=args["private"])
    x = private["x"] if _is(me, CLIENT) else np.zeros(shape + (cfg.hidden,))
    xs = SharedTensor.from_client(ctx, x, name="examples")
    h = E.encode(w, xs, mask, cfg, spec_attention(args))
    s = anchor_scores(E.mean_pool(h, mask), anchors, float(args.get("temperature", 20.0)))
    return {"scores": s.reveal("scores", to=CLIENT)}


def _tune_setup(ctx, me, args):
    """What every party builds first in a tuning job: the model's public parts, the
    tuning settings, and the layer weights on the servers (shared once)."""
    from secptune.nn import encoder as E
    from secptune.tuning.loop import TuneConfig
    from secptune.tuning.run import spec_attention

    cfg, params = _model(me, args)
    tune_cfg = TuneConfig(prompt_len=int(args["prompt_len"]), mode="mpc", private_weights=bool(args["private"]),
                          attention=spec_attention(args),
                          temperature=float(args["temperature"]), max_tokens=int(args["max_tokens"]),
                          head=args.get("head", "anchor"), popsize=1, budget=1)
    word_ids = args["word_ids"] if tune_cfg.head == "mlm" else None
    weights = E.share_weights(ctx, params, private=bool(args["private"]), word_ids=word_ids)
    return cfg, params, tune_cfg, weights


def tune_server(ctx, me, args, private):
    """A server's side of ``secptune tune --parties``: the weights once, then the
    client's announced steps (a new set of examples, a batch of prompts to score)
    with placeholders of the announced shapes, until the client says stop."""
    from secptune.tuning.loop import Scorer

    cfg, params, tune_cfg, weights = _tune_setup(ctx, me, args)
    if me == MODEL_OWNER:
        return {}
    anchors = _head_data(args)
    scorers = []
    while True:
        cmd = _recv_json(ctx.chan.links[CLIENT])
        if cmd["op"] == "stop":
            return {"scorers": len(scorers)}
        if cmd["op"] == "scorer":
            scorers.append(Scorer(cfg, params, np.zeros(cmd["shape"], np.int64), np.asarray(cmd["mask"]), anchors,
                                  tune_cfg, ctx=ctx, weights=weights))
        elif cmd["op"] == "score":
            scorers[int(cmd["scorer"])](np.zeros(cmd["shape"]), tag=cmd["tag"])
        else:
            raise LinkError(f"{PARTY_NAMES[me]}: unknown step {cmd['op']!r} from the client")


JOBS = {"selftest": selftest, "encode": encode, "tune": tune_server}


class RemoteSession:
    """The client's side of a tuning run against server processes (``tune_run``'s
    ``remote``): connects, starts the servers' ``tune`` job, shares nothing but what
    the protocol shares, and announces each secure step before it runs it."""

    def __init__(self, config_path):
        self.config_path = config_path
        self.net = None

    def start(self, spec, tune_cfg, anchors):
        """(ctx, weights, announce) for a run's settings; anchors (the head's data: anchor
        embeddings, or the masked-LM head's verbalizer) are public."""
        cfg = load_config(self.config_path)
        self.net = Network(CLIENT, cfg)
        links = self.net.connect()
        from secptune.tuning.run import attention_fields
        from secptune.weights.checkpoint import read_config_json

        args = {"model": spec.model, "config": read_config_json(spec.model),
                "private": spec.weights == "private", "prompt_len": spec.prompt_len,
                **attention_fields(spec), "temperature": tune_cfg.temperature,
                "max_tokens": tune_cfg.max_tokens, "head": tune_cfg.head}
        if tune_cfg.head == "mlm":
            args.update(mask_id=int(anchors.mask_id), word_ids=np.asarray(anchors.word_ids).tolist())
        else:
            args["anchors"] = np.asarray(anchors).tolist()
        for s in (0, 1, 2):
            _send_json(links[s], {"name": "tune", "args": args})
        keys = self.net.agree_keys()
        self.ctx = party_context(CLIENT, links, EngineConfig(), keys=keys, on_round_end=self.net.flush)
        _, _, _, weights = _tune_setup(self.ctx, CLIENT, args)
        self.count = 0
        return self.ctx, weights, self.announce

    def announce(self, cmd: dict):
        for s in (0, 1, 2):
            _send_json(self.net.links[s], cmd)
        if cmd["op"] == "scorer":
            self.count += 1
            return self.count - 1
        return None

    def stop(self, ok: bool, reason: str = "") -> None:
        if self.net is None:
            return
        try:
            if ok:
                self.announce({"op": "stop"})
                self.net.finish()
            else:
                self.net.abort(reason)
        finally:
            self.net.close()
            self.net = None


# ----------------------------------------------------------------------------
# running a party

def _send_json(link, obj) -> None:
    data = np.frombuffer(json.dumps(obj).encode(), np.uint8)
    link.send("job/size", np.array([data.size], np.uint64))
    link.send("job", data)


def _recv_json(link) -> dict:
    n = int(link.recv("job/size", np.zeros(1, np.uint64))[0])
    return json.loads(link.recv("job", np.zeros(n, np.uint8)).tobytes())


def _run(me: int, config_path, job: dict | None, private, seed: int | None, log=sys.stderr) -> tuple:
    cfg = load_config(config_path)
    net = Network(me, cfg)
    try:
        t0 = time.perf_counter()
        links = net.connect()
        if me == CLIENT:
            for s in (0, 1, 2):
                _send_json(links[s], job)
        elif me in (0, 1, 2):
            job = _recv_json(links[CLIENT])
            if me == 0 and MODEL_OWNER in links:       # S0 passes the job on to the model owner
                _send_json(links[MODEL_OWNER], job)
        else:
            job = _recv_json(links[0])
        if job["name"] not in JOBS:
            raise LinkError(f"{PARTY_NAMES[me]}: unknown job {job['name']!r}")
        seed = job.get("seed") if seed is None else seed
        keys = None if seed is not None else net.agree_keys()
        flush = net.flush
        ctx = party_context(me, links, EngineConfig(seed=seed), keys=keys, on_round_end=flush)
        t1 = time.perf_counter()
        before = [(link.bytes_sent, link.wire_sent) for link in links.values()]
        out = JOBS[job["name"]](ctx, me, job["args"], private)
        after = [(link.bytes_sent, link.wire_sent) for link in links.values()]
        run_s = time.perf_counter() - t1
        net.finish()
        stats = {"party": PARTY_NAMES[me], "connect_s": t1 - t0, "run_s": run_s,
                 "rounds": ctx.chan.rounds, "engine_bytes_sent": ctx.chan.bytes_sent[me],
                 "socket_payload_bytes_sent": sum(a[0] - b[0] for a, b in zip(after, before)),
                 "socket_frame_bytes_sent": sum(a[1] - b[1] for a, b in zip(after, before))}
        if me != CLIENT:           # a server's log line per job; the client's command prints its own summary
            print(json.dumps(stats), file=log, flush=True)
        return out, stats
    except LinkError as e:
        net.abort(str(e))
        raise
    finally:
        net.close()


def serve(me: int, config_path, seed: int | None = None, once: bool = True) -> dict:
    """A server's (or the model owner's) life: connect, receive a job from the client,
    run it; again for the next client unless ``once``.  Returns the last job's stats."""
    while True:
        stats = _run(me, config_path, None, None, seed)[1]
        if once:
            return stats


def run_client(config_path, name: str, args: dict, private: dict, seed: int | None = None) -> tuple:
    """The client's side of a job; returns (what was opened to the client, its stats)."""
    job = {"name": name, "args": args}
    if seed is not None:
        job["seed"] = seed        # replay mode (tests): every party derives its keys from the seed
    return _run(CLIENT, config_path, job, private, None)
