"""Party mode: every party runs the same protocol code on its own view, with real messages.

The parties run as threads with queue links; with the same seed the opened
values must equal the one-process simulation's bit for bit.
"""

import queue
from pathlib import Path

import numpy as np
import pytest

from secptune.engine import CLIENT, MODEL_OWNER, Context, EngineConfig, SharedTensor, approx
from secptune.engine.party import LinkError, QueueLink, party_context, run_threads
from secptune.nn import encoder as E
from secptune.nn.attention import AttentionConfig
from secptune.nn.heads import anchor_scores
from secptune.weights.checkpoint import load_checkpoint, placeholder_params

FIX = Path(__file__).parent / "fixtures"
CFG = EngineConfig(seed=11)


def _functions(ctx, me):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 24)) * 3 if me == CLIENT else np.zeros((6, 24))
    x = SharedTensor.from_client(ctx, v)
    pos = SharedTensor.from_client(ctx, np.abs(v) + 0.5)
    out = {
        "mul": x * x, "relu": x.relu(), "lt": x.lt(0.5), "max": x.max(axis=-1), "exp": approx.exp(x - 10.0),
        "recip": approx.reciprocal(pos), "rsqrt": approx.rsqrt(pos), "gelu": approx.gelu(x),
        "gelu_poly": approx.gelu_poly(x * 0.3), "softmax": approx.softmax(x), "layernorm": approx.layernorm(x),
        "cos": approx.cos_sin(x)["cos"],
        "matmul_public": x.reshape(2, 3, 24) @ np.random.default_rng(1).normal(size=(24, 5)),  # public: same at every party
    }
    return {k: t.reveal(f"open/{k}") for k, t in out.items()}


def test_protocols_give_the_simulations_values_in_party_mode():
    sim = _functions(Context(CFG), CLIENT)
    res = run_threads(_functions, CFG, parties=(0, 1, 2, CLIENT))
    for me in (0, 1, 2):
        for k, want in sim.items():
            np.testing.assert_array_equal(res[me][k], want, err_msg=f"{k} at S{me}")


def _encoder(kind):
    """The encoder program; ``me`` None: the simulation, which plays every party."""
    cfg, params = load_checkpoint(FIX / "bert")
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 99, size=(3, 9))
    mask = np.ones((3, 9))
    mask[1, 6:] = 0
    anchors = rng.normal(size=(2, cfg.hidden))
    att = AttentionConfig(kind, features=8)

    def program(ctx, me):
        # the model owner has the weights, the client the inputs; the others pass zeros of the same shapes
        owner, client = me in (None, MODEL_OWNER), me in (None, CLIENT)
        w = E.share_weights(ctx, params if owner else placeholder_params(cfg), private=True)
        x = E.embed(params, cfg, ids) if client else np.zeros((3, 9, cfg.hidden))
        xs = SharedTensor.from_client(ctx, x, name="examples")
        with ctx.chan.tap(CLIENT if me is None else me) as got:
            h = E.encode(w, xs, mask, cfg, att)
            s = anchor_scores(E.mean_pool(h, mask), anchors, 20.0)
            scores = s.reveal("scores", to=CLIENT)
        return scores, got, ctx.chan.cost()

    return program


@pytest.mark.parametrize("kind", ["softmax", "rfa"])
def test_private_weight_encoder_forward_in_party_mode(kind):
    program = _encoder(kind)
    sim, _, sim_cost = program(Context(CFG), None)
    res = run_threads(program, CFG)
    scores, client_got, cost = res[CLIENT]
    np.testing.assert_array_equal(scores, sim)
    assert cost == sim_cost                                 # every party counts what the simulation counts
    # the client receives only its scores: one component from each server
    assert [(tag, src) for tag, src, _ in client_got] == [("scores/open", s) for s in (0, 1, 2)]
    # a server receives masked material only, never from the client inside the forward
    for me in (0, 1, 2):
        assert all(src in (0, 1, 2) for _, src, _ in res[me][1])


def _pair(timeout=1.0):
    a_to_b, b_to_a = queue.Queue(), queue.Queue()
    return QueueLink(0, 1, a_to_b, b_to_a, timeout), QueueLink(1, 0, b_to_a, a_to_b, timeout), a_to_b


def test_a_bad_frame_is_an_error_naming_the_peer_and_the_step():
    a, b, _ = _pair()
    a.send("mul/reshare", np.zeros(4, np.uint64))
    with pytest.raises(LinkError, match=r"S1: message from S0 at step 'trunc/open'.*peer is at step 'mul/reshare'"):
        b.recv("trunc/open", np.zeros(4, np.uint64))
    a, b, wire = _pair()
    a.send("x", np.zeros(3, np.uint64))
    wire.get()                                   # a lost frame
    a.send("x", np.zeros(3, np.uint64))
    with pytest.raises(LinkError, match="sequence number 1, expected 0"):
        b.recv("x", np.zeros(3, np.uint64))
    a, b, _ = _pair()
    a.send("x", np.zeros(3, np.uint64))
    with pytest.raises(LinkError, match="24 bytes, expected 32"):
        b.recv("x", np.zeros(4, np.uint64))
    with pytest.raises(LinkError, match="no message from S0 within 1.0 s at step 'y'"):
        b.recv("y", np.zeros(1, np.uint64))


def test_a_party_needs_keys_or_a_seed():
    with pytest.raises(ValueError, match="no key for streams"):
        party_context(0, {}, EngineConfig())
