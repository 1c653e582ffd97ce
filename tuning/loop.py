"""Forward-only prompt tuning (Black-Box Tuning) with the forward pass in plaintext or on shares.

Roles: the client (data owner) holds the examples, the projection A and the
CMA-ES state; every generation it asks CMA-ES for ``popsize`` points z_j,
maps each to a prompt p_j = A z_j (L x hidden) and has the class scores of
all candidates x all training examples computed; it opens the scores,
computes each candidate's loss and tells CMA-ES.  In ``mpc`` mode the
training inputs are shared once and cached as shares, each generation shares
only the new prompts, and the scores are opened to the client alone.

This module is the loop as a library; ``run.py`` wraps the same generation
step in a resumable run folder for ``secptune tune``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from secptune.engine import CLIENT, Context, EngineConfig, SharedTensor
from secptune.nn import encoder as E
from secptune.nn.attention import AttentionConfig
from secptune.nn.heads import anchor_scores, pair_scores

from .tasks import HEADS


@dataclass(frozen=True)
class TuneConfig:
    """Black-Box Tuning's settings as defaults (prompt length 50, d 500, popsize 20,
    sigma 1, budget 8000 model calls); ``mode`` plain or mpc."""

    prompt_len: int = 50
    subspace_dim: int = 500
    popsize: int = 20
    sigma: float = 1.0
    budget: int = 8000
    temperature: float = 20.0
    seed: int = 0
    mode: Literal["plain", "mpc"] = "plain"
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    private_weights: bool = True
    engine_seed: int | None = None
    max_tokens: int = 2048          # per secure forward pass; bounds memory (about 10 GB at 2048)
    head: Literal["anchor", "pair", "mlm"] = "anchor"     # scoring head (``tasks.HEADS``)
    pair_class: int = 0             # pair head: the class that high similarity means

    def __post_init__(self):
        if self.mode not in ("plain", "mpc"):
            raise ValueError(f"TuneConfig.mode must be 'plain' or 'mpc', got {self.mode!r}")
        if self.head not in HEADS:
            raise ValueError(f"TuneConfig.head must be one of {HEADS}, got {self.head!r}")
        if self.budget < self.popsize:
            raise ValueError(f"TuneConfig.budget {self.budget} is below one generation ({self.popsize} calls)")


class Projection:
    """The client's random projection A: R^d -> R^(L x hidden), std sigma_emb / sqrt(d) (BBT)."""

    def __init__(self, d: int, L: int, hidden: int, sigma_emb: float, seed: int):
        rng = np.random.default_rng(seed)
        self.A = rng.normal(0.0, sigma_emb / np.sqrt(d), size=(d, L * hidden))
        self.shape = (L, hidden)

    @classmethod
    def for_model(cls, tune_cfg: "TuneConfig", params) -> "Projection":
        """The run's projection: sigma_emb is the std of the model's word embeddings."""
        return cls(tune_cfg.subspace_dim, tune_cfg.prompt_len, params.word_emb.shape[1],
                   float(np.std(params.word_emb)), tune_cfg.seed)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """[P, d] -> prompts [P, L, hidden]."""
        return (np.asarray(Z) @ self.A).reshape((-1,) + self.shape)


def cross_entropy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of softmax(scores) against labels: scores [E, C]."""
    s = scores - scores.max(-1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


@dataclass(frozen=True)
class ClientHead:
    """The client's side of the head: from the opened scores of one prompt [E, K] to
    class scores [E, C].

    anchor, mlm: the opened scores are the class scores.  pair: the opened score is
    T cos(sentence 1, sentence 2); the class ``pair_class`` gets s - b and the
    other 0, with the threshold b fitted to the prompt's own training scores
    (the maximum-likelihood bias of a logistic model with slope 1; the loss is
    convex in b, so a few Newton steps find it).  The data owner does this in
    plaintext on scores it already holds; nothing else is opened."""

    kind: str = "anchor"
    pair_class: int = 0

    @classmethod
    def of(cls, tune_cfg: "TuneConfig") -> "ClientHead":
        return cls(tune_cfg.head, tune_cfg.pair_class)

    def fit(self, raw: np.ndarray, labels: np.ndarray) -> float | None:
        """The head's parameter from one prompt's training scores [E, K] (anchor, mlm: None)."""
        if self.kind != "pair":
            return None
        s = np.asarray(raw, np.float64)[:, 0]
        y = (np.asarray(labels) == self.pair_class).astype(np.float64)
        if y.min() == y.max():
            raise ValueError("the pair head's threshold needs training examples of both classes")
        b = float(np.median(s))
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(s - b)))
            step = float(np.sum(y - p)) / max(float(np.sum(p * (1.0 - p))), 1e-9)
            b -= float(np.clip(step, -5.0, 5.0))
            if abs(step) < 1e-9:
                break
        return b

    def logits(self, raw: np.ndarray, param: float | None) -> np.ndarray:
        """Class scores [..., C] from opened scores [..., K] and the fitted parameter."""
        raw = np.asarray(raw, np.float64)
        if self.kind != "pair":
            return raw
        out = np.zeros(raw.shape[:-1] + (2,))
        out[..., self.pair_class] = raw[..., 0] - param
        return out


class Scorer:
    """Class scores for a batch of prompts on fixed, pre-tokenised examples.

    plain: float64 forward.  mpc: the embedding-layer output of the examples
    is shared by the client once; weights public or shared by the model
    owner once; each call shares the prompts, runs the secure forward and
    opens the [P, E, K] scores to the client only (K = C class scores for the
    anchor head, K = 1 similarity for the pair head, whose input rows come in
    pairs: rows 2e and 2e + 1 are the two sentences of example e).
    """

    def __init__(self, cfg_model, params, ids: np.ndarray, mask: np.ndarray, anchors: np.ndarray,
                 tune: TuneConfig, ctx: Context | None = None, weights=None, announce=None):
        """``ctx`` and ``weights``: an existing run's context and server-side weights
        (so a dev or test scorer reuses the weights shared once).  ``announce``: with
        servers in other processes, tells them (public facts only: shapes, the padding
        mask) which secure step comes next, so they run the same protocol code."""
        self.cfg, self.params, self.mask, self.tune = cfg_model, params, np.asarray(mask), tune
        self.announce = announce
        if announce is not None and tune.mode == "mpc":
            self.index = announce({"op": "scorer", "shape": list(np.shape(ids)), "mask": self.mask.tolist()})
        self.anchors = anchors          # anchor head: anchor embeddings; mlm: a ``prepare.Verbalizer``
        if tune.head == "pair" and np.shape(ids)[0] % 2:
            raise ValueError(f"pair head: the input rows come in pairs, got {np.shape(ids)[0]} rows")
        word_ids = None
        if tune.head == "mlm":
            if params.mlm is None:
                raise ValueError("the masked-LM head needs a checkpoint with one; this model has none "
                                 "(a sentence-embedding model: use the anchor or pair head)")
            # where the ids are real (not a server's placeholders): the mask token's position per row
            holds_ids = tune.mode == "plain" or ctx is None or ctx.chan.me in (None, CLIENT)
            self.mask_pos = mask_positions(ids, self.mask, anchors.mask_id) if holds_ids else None
            word_ids = anchors.word_ids
            if tune.mode == "plain":
                self.mlm = E.restrict_mlm(params.mlm, word_ids)
        self.x = E.embed(params, cfg_model, ids)                        # client side
        if tune.mode == "plain":
            self.x = self.x.astype(np.float32)                          # the plaintext reference runs in float32
        self.calls = 0
        self.on_pass = None            # called with (passes done, passes) during a secure call
        if tune.mode == "mpc":
            self.ctx = ctx or Context(EngineConfig(seed=tune.engine_seed))
            self.weights = weights if weights is not None else E.share_weights(
                self.ctx, params, private=tune.private_weights, word_ids=word_ids)
            self.x_shared = SharedTensor.from_client(self.ctx, self.x, name="examples")
            if tune.head == "mlm":
                self.mlm = self.weights.mlm
                if self.mlm is None or self.mlm.decoder_b.shape[-1] != len(word_ids):
                    raise ValueError("masked-LM head: the weights given carry no head cut to the label words "
                                     "(share them with share_weights(..., word_ids=...))")
                # the mask's position can tell a text's length before it (a pair template's first
                # sentence): the client shares each row's one-hot position, never the index
                onehot = np.zeros(np.shape(ids), np.int64)
                if self.mask_pos is not None:
                    onehot[np.arange(len(onehot)), self.mask_pos] = 1
                self.at_mask = SharedTensor.from_client(self.ctx, onehot, fmt=None, name="mask-positions")

    def passes(self, P: int):
        """The secure forward's passes over the P x E (candidate, example) rows: rows sorted
        by their example's length, each pass padded only to its longest row and holding
        at most ``max_tokens`` tokens (which bounds memory; each pass costs one forward's
        rounds).  Yields (row indices p * E + e, width)."""
        n_ex = self.x.shape[0]
        lengths = self.mask.sum(1).astype(int)
        rows = np.argsort(np.tile(lengths, P), kind="stable")       # by length, then by row
        lo = 0
        while lo < len(rows):
            width = lengths[rows[lo] % n_ex]
            hi = lo
            while hi < len(rows):                  # widths grow along rows: extend while the pass fits
                w = max(width, lengths[rows[hi] % n_ex])
                if (hi - lo + 1) * w > self.tune.max_tokens and hi > lo:
                    break
                width, hi = w, hi + 1
            yield rows[lo:hi], int(width)
            lo = hi

    def _reduce(self, h, rows, width: int):
        """One vector per row from the last hidden states [rows, width, hidden] of the
        examples ``rows``: the hidden state at the mask token (mlm) or the mean pool.
        On shares the mask's hidden state is the one-hot row times h, an integer by
        fixed-point product (1 round, 8 B per output element per server)."""
        if self.tune.head == "mlm":
            if self.tune.mode == "plain":
                return h[np.arange(len(rows)), self.mask_pos[rows]]
            sel = self.at_mask[rows, :width].reshape(len(rows), 1, width)
            return sel.matmul(h, tag="mask-state").reshape(len(rows), h.shape[-1])
        return E.mean_pool(h, self.mask[rows, :width])

    def _head(self, pooled):
        """Opened-score rows from the reduced vectors [P R, hidden] (floats or shares)."""
        if self.tune.head == "pair":
            return pair_scores(pooled[0::2], pooled[1::2], self.tune.temperature)
        if self.tune.head == "mlm":
            return E.mlm_logits(self.mlm, pooled, np.arange(self.mlm.decoder_b.shape[-1]), self.cfg.layer_norm_eps)
        return anchor_scores(pooled, self.anchors, self.tune.temperature)

    def __call__(self, prompts: np.ndarray, tag: str = "scores") -> np.ndarray:
        P = prompts.shape[0]
        n_rows = self.x.shape[0]
        n_ex = n_rows // 2 if self.tune.head == "pair" else n_rows
        self.calls += P
        mask = np.tile(self.mask, (P, 1))
        att = self.tune.attention
        if self.tune.mode == "plain":
            h = E.encode(self.params, E.add_prompt(self.x, prompts.astype(np.float32)), mask, self.cfg, att)
            rows = np.tile(np.arange(n_rows), P)
            return self._head(self._reduce(h, rows, h.shape[1])).reshape(P, n_ex, -1)
        L = prompts.shape[1]
        if self.announce is not None:
            self.announce({"op": "score", "scorer": self.index, "shape": list(prompts.shape), "tag": tag})
        shared_prompts = SharedTensor.from_client(self.ctx, prompts, name="prompts")   # [P, L, hidden]
        parts, order = [], []
        passes = list(self.passes(P))
        for k, (rows, width) in enumerate(passes):
            ex, cand = rows % n_rows, rows // n_rows
            x = self.x_shared[ex, :width]          # the prompt goes on the L placeholders after [CLS]
            x = SharedTensor.concat([x[:, :1], x[:, 1:1 + L] + shared_prompts[cand], x[:, 1 + L:]], axis=1)
            h = E.encode(self.weights, x, self.mask[ex, :width], self.cfg, att)
            parts.append(self._reduce(h, ex, width))
            order.append(rows)
            if self.on_pass:
                self.on_pass(k + 1, len(passes))
        pooled = parts[0] if len(parts) == 1 else SharedTensor.concat(parts, axis=0)
        pooled = pooled[np.argsort(np.concatenate(order))]  # back to candidate-major rows (p, r)
        return self._head(pooled).reveal(tag, to=CLIENT).reshape(P, n_ex, -1)


def mask_positions(ids: np.ndarray, key_mask: np.ndarray, mask_id: int) -> np.ndarray:
    """The position of the one mask token in each row of ids (an error names a row without one)."""
    hits = (np.asarray(ids) == mask_id) & (np.asarray(key_mask) > 0)
    counts = hits.sum(1)
    bad = np.flatnonzero(counts != 1)
    if bad.size:
        raise ValueError(f"masked-LM head: row {int(bad[0])} has {int(counts[bad[0]])} mask tokens, expected one")
    return np.argmax(hits, axis=1)


@dataclass
class Generation:
    index: int
    losses: list
    best_loss: float
    train_accuracy: float          # of the generation's best candidate
    calls: int


def generation_step(es, scorer: Scorer, proj: Projection, labels: np.ndarray, tag: str):
    """One CMA-ES generation: ask, score every candidate on every example, tell.

    Returns (Z, class scores [P, E, C], losses, head parameters [P])."""
    head = ClientHead.of(scorer.tune)
    Z = np.asarray(es.ask())
    raw = scorer(proj(Z), tag=tag)
    params = [head.fit(r, labels) for r in raw]
    scores = np.stack([head.logits(r, b) for r, b in zip(raw, params)])
    losses = [cross_entropy(s, labels) for s in scores]
    es.tell(list(Z), losses)
    return Z, scores, losses, params


def new_strategy(tune_cfg: TuneConfig):
    """pycma's CMA-ES at z0 = 0 with the run's sigma, popsize and seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # cma without matplotlib
        import cma

    return cma.CMAEvolutionStrategy(np.zeros(tune_cfg.subspace_dim), tune_cfg.sigma,
                                    {"popsize": tune_cfg.popsize, "seed": tune_cfg.seed + 1, "verbose": -9})


def tune(scorer: Scorer, labels: np.ndarray, tune_cfg: TuneConfig, on_generation=None) -> dict:
    """Run CMA-ES until the budget of model calls is spent; returns the best point,
    its prompt, its training loss, the head's fitted parameter (pair head: the
    threshold) and the per-generation history."""
    proj = Projection.for_model(tune_cfg, scorer.params)
    es = new_strategy(tune_cfg)
    labels = np.asarray(labels)
    history, best = [], (np.inf, None, None)
    gen = 0
    while scorer.calls + tune_cfg.popsize <= tune_cfg.budget:
        Z, scores, losses, params = generation_step(es, scorer, proj, labels, f"gen{gen}/scores")
        j = int(np.argmin(losses))
        if losses[j] < best[0]:
            best = (losses[j], Z[j], params[j])
        acc = float(np.mean(np.argmax(scores[j], -1) == labels))
        g = Generation(gen, losses, losses[j], acc, scorer.calls)
        history.append(g)
        if on_generation:
            on_generation(g)
        gen += 1
    return {"z": best[1], "prompt": proj(best[1][None])[0], "loss": best[0], "history": history,
            "projection_seed": tune_cfg.seed, "head_param": best[2]}
