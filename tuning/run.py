"""A tuning run in a folder: config, per-generation log, resumable state, best prompt, metrics.

    <out>/config.json     the run's settings (a rerun with other settings is refused)
    <out>/log.jsonl       one line per generation (and per dev evaluation)
    <out>/state.pkl       CMA-ES and the loop's state after the last finished generation
    <out>/prompt.npz      the best prompt by dev metric: z, projection seed, prompt matrix
    <out>/metrics.json    final dev and test metrics

Every generation is written before the next starts, so an interrupted run
loses at most the generation in flight; running the same command again
resumes from ``state.pkl``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from secptune.engine.network import LAN, WAN
from secptune.nn.attention import AttentionConfig
from secptune.weights.checkpoint import load_checkpoint

from .loop import ClientHead, Projection, Scorer, TuneConfig, cross_entropy, generation_step, new_strategy
from .metrics import paired_standard_errors, score
from .prepare import anchor_embeddings, encode_examples, load_tokenizer, verbalizer
from .tasks import BUILTIN, TASKS, Task


@dataclass(frozen=True)
class RunSpec:
    task: str
    data: str
    split: str
    model: str
    mode: str
    prompt_len: int
    subspace_dim: int
    popsize: int
    sigma: float
    budget: int
    max_len: int
    attention: str
    features: int
    weights: str
    eval_every: int
    patience: int
    seed: int
    test_limit: int
    zero_shot: bool = True          # also score the untuned template (a second test pass)
    head: str = ""                  # anchor or pair; "" = the task's default
    feature_map: str = "trig"       # RFA features: trig or positive
    rfa_layers: str = ""            # RFA only in these layers ("0,1"); "" = every layer
    centre_keys: bool = False       # RFA features on keys centred by the mean of q + k
    rfa_seed: int = 0               # the public seed of RFA's random projections


class RunError(RuntimeError):
    pass


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


RFA_FIELDS = ("features", "feature_map", "rfa_layers", "centre_keys", "rfa_seed")   # RunSpec's RFA settings


def attention_fields(spec: RunSpec) -> dict:
    """The attention settings of a run as the fields ``spec_attention`` reads."""
    return {"attention": spec.attention, **{k: getattr(spec, k) for k in RFA_FIELDS}}


def spec_attention(spec) -> AttentionConfig:
    """The attention settings of a run (a ``RunSpec``, or the same fields in a dict)."""
    get = spec.get if isinstance(spec, dict) else lambda k, d=None: getattr(spec, k, d)
    return AttentionConfig.from_options(get("attention", "softmax"), get("features", 64),
                                        get("feature_map", "trig"), get("rfa_layers", ""),
                                        get("centre_keys", False), get("rfa_seed", 0))


def _tune_config(spec: RunSpec) -> TuneConfig:
    """The loop's settings; ``spec.head`` already resolved (``_tune_run``, ``eval_run``)."""
    task = TASKS[spec.task]
    return TuneConfig(prompt_len=spec.prompt_len, subspace_dim=spec.subspace_dim, popsize=spec.popsize,
                      sigma=spec.sigma, budget=spec.budget, seed=spec.seed, mode=spec.mode,
                      attention=spec_attention(spec),
                      private_weights=spec.weights == "private", engine_seed=None,
                      head=spec.head, pair_class=task.pair_class)


def _conflict(out: Path, spec: RunSpec) -> str | None:
    """The settings in which the run in ``out`` differs from ``spec`` ("a: old -> new, ..."),
    or None when ``out`` holds no run, this run, or a run with no finished generation
    (nothing to lose: the new settings take the folder over)."""
    cfg_path = out / "config.json"
    if not cfg_path.exists() or not (out / "state.pkl").exists():
        return None
    spec = replace(spec, head=spec.head or TASKS[spec.task].head)
    old = json.loads(cfg_path.read_text())
    old.setdefault("head", "anchor")         # folders from before the pair head used the anchor head
    defaults = {f.name: f.default for f in fields(RunSpec) if f.default is not MISSING}
    diff = {k: (old.get(k, defaults.get(k)), v) for k, v in asdict(spec).items()
            if old.get(k, defaults.get(k)) != v}
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items()) or None


def default_out(spec: RunSpec, root: Path = Path("runs")) -> Path:
    """The run folder a command gets without ``--out``: ``<task>-<data>-<split>-<mode>-s<seed>``
    under ``root`` (data: ``builtin`` or the data folder's name), or, when that folder
    holds a run with other settings, the first of ``...-2``, ``...-3`` that is free or
    holds this very run (so the same command resumes and another one never collides)."""
    data = BUILTIN if spec.data == BUILTIN else Path(spec.data).name
    base = f"{spec.task}-{data}-{spec.split}-{spec.mode}-s{spec.seed}"
    k = 1
    while _conflict(root / (base if k == 1 else f"{base}-{k}"), spec):
        k += 1
    return root / (base if k == 1 else f"{base}-{k}")


def _resume_state(out: Path, spec: RunSpec) -> dict | None:
    """The state of a previous run of ``spec`` in ``out`` (None if none); a run with other
    settings is refused.  Creates nothing: a run that fails before it starts leaves no folder."""
    diff = _conflict(out, spec)
    if diff:
        raise RunError(f"{out}: holds a run with other settings ({diff}); use another --out, or leave --out "
                       f"out to get a fresh folder")
    state = out / "state.pkl"
    return pickle.loads(state.read_bytes()) if state.exists() else None


def _start_folder(out: Path, spec: RunSpec, fresh: bool) -> None:
    """Create the run folder and write its settings; ``fresh`` (no finished generation to
    resume): clear what an earlier attempt that never finished a generation left."""
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in ("log.jsonl", "prompt.npz", "metrics.json"):
            (out / name).unlink(missing_ok=True)
    _atomic_write(out / "config.json", json.dumps(asdict(spec), indent=2).encode())


def _bar(done: float, total: int, width: int = 20) -> str:
    filled = int(width * min(done, total) / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _log(out: Path, record: dict) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def _load_model(spec: RunSpec, task: Task) -> tuple:
    """(config, params, tokenizer, the head's public data) of the run's model: for the
    anchor and pair heads the model owner's published embeddings of the task's anchor
    texts, for the masked-LM head the label words' token ids (``prepare.verbalizer``)."""
    mdir = Path(spec.model)
    cfg, params = load_checkpoint(mdir, with_mlm=True if spec.head == "mlm" else None)
    tok = load_tokenizer(mdir)
    if spec.head == "mlm":
        try:
            return cfg, params, tok, verbalizer(tok, task)
        except ValueError as e:
            raise RunError(f"{mdir}: {e}") from None
    return cfg, params, tok, anchor_embeddings(tok, cfg, params, task)


def tune_run(spec: RunSpec, out: Path, stream=None, remote=None) -> dict:
    """Run (or resume) a tuning run, printing progress to ``stream`` (default stdout);
    returns the final metrics.  ``remote``: the servers are other processes
    (``secptune.deploy.RemoteSession``); this process is then the client only."""
    stream = stream or sys.stdout
    if remote is None or spec.mode != "mpc":
        return _tune_run(spec, out, stream, None)
    try:
        metrics = _tune_run(spec, out, stream, remote)
    except BaseException as e:
        remote.stop(False, f"the client stopped: {type(e).__name__}: {e}")
        raise
    remote.stop(True)
    return metrics


def _say(stream, text: str) -> None:
    print(text, file=stream, flush=True)


def _untuned(scorer, dev_scorer, head: ClientHead, task: Task, prompt_len: int, hidden: int, y, dy) -> dict:
    """The untuned template (a zero prompt on the placeholders): its head parameter (the
    pair head's threshold, fitted on its training scores), training loss and metric and
    its dev metric, the reference a tuned prompt has to beat.  On shares: two passes of
    one candidate, whose scores are opened to the client only."""
    zero = np.zeros((1, prompt_len, hidden))
    raw = scorer(zero, tag="untuned/train-scores")[0]
    param = head.fit(raw, y)
    logits = head.logits(raw, param)
    dev_raw = dev_scorer(zero, tag="untuned/dev-scores")[0]
    return {"untuned": True, "calls": 0, "head_param": param, "train_loss": cross_entropy(logits, y),
            "train_metric": score(task.metric, np.argmax(logits, -1), y),
            "dev_metric": score(task.metric, np.argmax(head.logits(dev_raw, param), -1), dy)}


def _tune_run(spec: RunSpec, out: Path, stream, remote) -> dict:
    task: Task = TASKS[spec.task]
    spec = replace(spec, head=spec.head or task.head)
    tune_cfg = _tune_config(spec)
    state = _resume_state(out, spec)
    started = time.perf_counter()
    _say(stream, f"loading the model {spec.model} ({spec.head} head)")
    cfg, params, tok, anchors = _load_model(spec, task)
    where = "built-in UCI review sentences" if spec.data == BUILTIN else spec.data
    train = task.load(spec.data, spec.split, "train")
    dev = task.load(spec.data, spec.split, "dev")
    _say(stream, f"data: {where}, split {spec.split}: {len(train)} training and {len(dev)} dev examples")
    ids, mask, y = encode_examples(tok, task, train, spec.prompt_len, spec.max_len, tune_cfg.head)
    dids, dmask, dy = encode_examples(tok, task, dev, spec.prompt_len, spec.max_len, tune_cfg.head)
    head = ClientHead.of(tune_cfg)
    ctx = weights = announce = None
    if remote is not None:
        ctx, weights, announce = remote.start(spec, tune_cfg, anchors)
    if spec.mode == "mpc":
        owner = "the model owner shares the weights" if spec.weights == "private" else "the weights are public"
        servers = "the server processes" if remote is not None else "three servers in this process"
        _say(stream, f"secure setup on {servers}: {owner}; the client shares its examples "
             f"(a first run after installing also compiles the engine's kernels: a minute or two)")
    scorer = Scorer(cfg, params, ids, mask, anchors, tune_cfg, ctx=ctx, weights=weights, announce=announce)
    ctx = getattr(scorer, "ctx", None)
    weights = getattr(scorer, "weights", None)
    dev_scorer = Scorer(cfg, params, dids, dmask, anchors, tune_cfg, ctx=ctx, weights=weights, announce=announce)
    proj = Projection.for_model(tune_cfg, params)
    _start_folder(out, spec, fresh=state is None)

    if state is None:
        state = {"es": new_strategy(tune_cfg), "gen": 0, "calls": 0, "best_train": (np.inf, None), "best_dev": (-1.0, None),
                 "best_train_param": None, "best_dev_param": None, "since_improved": 0, "done": False}
    else:
        _say(stream, f"resuming {out} at generation {state['gen']} ({state['calls']} model calls)")
    if "untuned" not in state:
        _say(stream, "scoring the untuned template on the training and dev examples")
        state["untuned"] = _untuned(scorer, dev_scorer, head, task, spec.prompt_len, cfg.hidden, y, dy)
        _log(out, state["untuned"])
    u = state["untuned"]
    _say(stream, f"untuned template: train loss {u['train_loss']:.4f}, train {task.metric} {u['train_metric']:.3f}, "
         f"dev {task.metric} {u['dev_metric']:.3f} ({time.perf_counter() - started:.0f} s so far)")
    es = state["es"]
    total_gens = spec.budget // spec.popsize
    live = hasattr(stream, "isatty") and stream.isatty()
    if ctx is not None:     # a secure generation takes a while: say where it is, pass by pass
        def on_pass(k, n):
            if live:
                print(f"\r{_bar(state['gen'] + k / n, total_gens)} gen {state['gen'] + 1}/{total_gens} "
                      f"pass {k}/{n}", end="", file=stream, flush=True)
            elif k < n:
                _say(stream, f"  gen {state['gen'] + 1}/{total_gens}: secure pass {k}/{n} done")
        scorer.on_pass = on_pass
    while not state["done"] and state["calls"] + spec.popsize <= spec.budget:
        t0 = time.perf_counter()
        c0 = ctx.chan.cost() if ctx is not None else None
        Z, scores, losses, fitted = generation_step(es, scorer, proj, y, f"gen{state['gen']}/scores")
        j = int(np.argmin(losses))
        if losses[j] < state["best_train"][0]:
            state["best_train"] = (losses[j], Z[j])
            state["best_train_param"] = fitted[j]
        state["calls"] += spec.popsize
        wall = time.perf_counter() - t0
        rec = {"gen": state["gen"], "calls": state["calls"], "best_loss": losses[j],
               "mean_loss": float(np.mean(losses)),
               "train_metric": score(task.metric, np.argmax(scores[j], -1), y), "wall_s": wall}
        if c0 is not None:
            cost = ctx.chan.cost() - c0
            rec.update(rounds=cost.rounds, bytes_per_party=cost.max_server_bytes,
                       lan_s=LAN.seconds(cost, wall), wan_s=WAN.seconds(cost, wall))
        state["gen"] += 1
        if state["gen"] % spec.eval_every == 0 or state["calls"] + spec.popsize > spec.budget:
            z = state["best_train"][1]
            ds = dev_scorer(proj(z[None]), tag=f"gen{state['gen'] - 1}/dev-scores")[0]
            dev_metric = score(task.metric, np.argmax(head.logits(ds, state.get("best_train_param")), -1), dy)
            rec["dev_metric"] = dev_metric
            if dev_metric > state["best_dev"][0]:
                state["best_dev"] = (dev_metric, z)
                state["best_dev_param"] = state.get("best_train_param")
                state["since_improved"] = 0
                np.savez(out / "prompt.npz", z=z, projection_seed=spec.seed, prompt=proj(z[None])[0],
                         subspace_dim=spec.subspace_dim, prompt_len=spec.prompt_len,
                         head=tune_cfg.head, head_param=np.nan if state["best_dev_param"] is None
                         else state["best_dev_param"])
            else:
                state["since_improved"] += 1
                if spec.patience and state["since_improved"] >= spec.patience:
                    state["done"] = True
        _log(out, rec)
        _atomic_write(out / "state.pkl", pickle.dumps(state))
        extra = (f" rounds {rec['rounds']} B/party {rec['bytes_per_party']:.3g} LAN {rec['lan_s']:.1f}s "
                 f"WAN {rec['wan_s']:.1f}s" if "rounds" in rec else "")
        dev = f" dev {rec['dev_metric']:.3f}" if "dev_metric" in rec else ""
        print(f"{chr(13) if live else ''}{_bar(state['gen'], total_gens)} "
              f"gen {rec['gen'] + 1}/{total_gens} loss {rec['best_loss']:.4f} (mean {rec['mean_loss']:.4f}) "
              f"train {rec['train_metric']:.3f}{dev} {wall:.1f}s{extra}", file=stream, flush=True)

    t0 = time.perf_counter()
    limit = f"the first {spec.test_limit}" if spec.test_limit else "all"
    _say(stream, f"scoring the tuned prompt and the untuned template on {limit} test examples"
         + (" on shares" if ctx is not None else ""))
    def on_batch(done, total):
        if ctx is not None and done < total:        # on shares each batch takes a while
            _say(stream, f"  test: {done}/{total} examples scored")
    metrics = evaluate(spec, cfg, params, tok, task, anchors, tune_cfg, ctx, weights, state, announce=announce,
                       on_batch=on_batch)
    metrics.update(_generation_means(out), test_seconds=time.perf_counter() - t0,
                   untuned_dev_metric=u["dev_metric"], untuned_train_loss=u["train_loss"],
                   best_train_loss=float(state["best_train"][0]), train_examples=len(y), dev_examples=len(dy))
    _atomic_write(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    return metrics


def read_log(out: Path) -> list:
    """The run's log records: the untuned template's (``"untuned": true``), then one per generation."""
    path = out / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _generation_means(out: Path) -> dict:
    """Per-generation means over the run's log (every generation, across resumes)."""
    recs = [r for r in read_log(out) if not r.get("untuned")]
    if not recs:
        return {"seconds_per_generation": None, "bytes_per_party_per_generation": None}
    mean = lambda key: float(np.mean([r.get(key, 0) for r in recs]))      # noqa: E731
    res = {"seconds_per_generation": mean("wall_s"), "bytes_per_party_per_generation": mean("bytes_per_party"),
           "rounds_per_generation": mean("rounds")}
    if "lan_s" in recs[0]:
        res.update(lan_seconds_per_generation=mean("lan_s"), wan_seconds_per_generation=mean("wan_s"))
    return res


def template_param(scores, head: ClientHead, tok, task, examples, prompt_len: int, max_len: int, prompt):
    """The head's parameter fitted to one prompt's scores on labelled examples (the pair
    head's threshold; the anchor head has none).  ``scores(ids, mask, prompts, tag)``
    opens the scores of [P, L, hidden] prompts on tokenised examples."""
    if head.kind != "pair":
        return None
    ids, mask, y = encode_examples(tok, task, examples, prompt_len, max_len, head.kind)
    return head.fit(scores(ids, mask, prompt[None], "zero-shot/train-scores")[0], y)


def predictions(scores, head: ClientHead, tok, task, examples, prompt_len: int, max_len: int, prompts,
                head_params: list, on_batch=None) -> tuple:
    """(predicted classes [P, N] of each prompt with its head parameter, labels [N]) on
    examples scored in batches of 64 (``scores`` as in ``template_param``); ``on_batch``
    is called with (examples scored, examples) after each batch."""
    preds, gold = [], []
    for i in range(0, len(examples), 64):
        ids, mask, y = encode_examples(tok, task, examples[i:i + 64], prompt_len, max_len, head.kind)
        s = scores(ids, mask, prompts, "test/scores")
        preds.append(np.stack([np.argmax(head.logits(r, b), -1) for r, b in zip(s, head_params)]))
        gold.append(y)
        if on_batch:
            on_batch(min(i + 64, len(examples)), len(examples))
    return np.concatenate(preds, axis=1), np.concatenate(gold)


def evaluate(spec, cfg, params, tok, task, anchors, tune_cfg, ctx, weights, state, test=None,
             announce=None, on_batch=None) -> dict:
    """Dev and test metric of the best prompt by dev metric (test through the same path).

    ``test``: examples to score instead of the task's test set; ``on_batch`` as in
    ``predictions``."""
    def scores(ids, mask, prompts, tag):
        return Scorer(cfg, params, ids, mask, anchors, tune_cfg, ctx=ctx, weights=weights,
                      announce=announce)(prompts, tag=tag)

    z = state["best_dev"][1]
    proj = Projection.for_model(tune_cfg, params)
    head = ClientHead.of(tune_cfg)
    # the tuned prompt and the untuned template (a zero prompt on the placeholders), in one pass
    prompts = proj(z[None])
    head_params = [state.get("best_dev_param")]
    if spec.zero_shot:
        prompts = np.concatenate([prompts, np.zeros((1, spec.prompt_len, cfg.hidden))])
        # the untuned template's threshold, fitted as the tuned prompt's was: a tuning run
        # fitted it before its first generation (``_untuned``); ``eval_run`` fits it here
        untuned = state.get("untuned", {})
        head_params.append(untuned["head_param"] if "head_param" in untuned else
                           template_param(scores, head, tok, task, task.load(spec.data, spec.split, "train"),
                                          spec.prompt_len, spec.max_len, prompts[1]))
    if test is None:
        test = task.load(spec.data, spec.split, "test")
    if spec.test_limit:
        test = test[:spec.test_limit]
    preds, gold = predictions(scores, head, tok, task, test, spec.prompt_len, spec.max_len, prompts, head_params,
                              on_batch)
    return {"task": spec.task, "split": spec.split, "metric": task.metric, "mode": spec.mode,
            "attention": spec.attention, **{k: getattr(spec, k) if spec.attention == "rfa" else None for k in RFA_FIELDS},
            "weights": spec.weights, "head": head.kind, "head_param": head_params[0],
            "dev_metric": state["best_dev"][0], "test_metric": score(task.metric, preds[0], gold),
            "zero_shot_metric": score(task.metric, preds[1], gold) if spec.zero_shot else None,
            **_standard_errors(task.metric, preds, gold),
            "zero_shot_head_param": head_params[1] if spec.zero_shot else None,
            "test_examples": len(test), "model_calls": state["calls"], "generations": state["gen"]}


def _standard_errors(metric: str, preds, gold) -> dict:
    """Bootstrap standard errors of the test metric, of the untuned template's and of the
    gain (tuned - untuned, paired on the same examples)."""
    if len(preds) < 2:
        a = paired_standard_errors(metric, preds[0], preds[0], gold)[0]
        return {"test_metric_se": a, "zero_shot_metric_se": None, "gain_se": None}
    a, b, d = paired_standard_errors(metric, preds[0], preds[1], gold)
    return {"test_metric_se": a, "zero_shot_metric_se": b, "gain_se": d}


def eval_run(out: Path, mode: str | None = None, test_file: str | None = None,
             test_limit: int | None = None, remote=None) -> dict:
    """Score a finished run's saved prompt (``prompt.npz``) on its task's test set, or on
    ``test_file`` (any format the task reader accepts), in plaintext or on shares
    (``remote``: against server processes, as in ``tune_run``)."""
    from .data import read_examples

    cfg_path, prompt_path = out / "config.json", out / "prompt.npz"
    for path in (cfg_path, prompt_path):
        if not path.exists():
            raise RunError(f"{path}: missing (is {out} a finished tuning run?)")
    spec = RunSpec(**json.loads(cfg_path.read_text()))
    if not spec.head:           # run folders from before the pair head used the anchor head
        spec = replace(spec, head="anchor")
    if mode:
        spec = replace(spec, mode=mode)
    if test_limit is not None:
        spec = replace(spec, test_limit=test_limit)
    saved = np.load(prompt_path)
    task = TASKS[spec.task]
    tune_cfg = _tune_config(spec)
    cfg, params, tok, anchors = _load_model(spec, task)
    test = read_examples(test_file, task.columns, task.label_map) if test_file else None
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    param = float(saved["head_param"]) if "head_param" in saved.files else float("nan")
    state = {"best_dev": (metrics.get("dev_metric", float("nan")), saved["z"]), "calls": metrics.get("model_calls", 0),
             "gen": metrics.get("generations", 0), "best_dev_param": None if np.isnan(param) else param}
    ctx = weights = announce = None
    if spec.mode == "mpc" and remote is not None:
        ctx, weights, announce = remote.start(spec, tune_cfg, anchors)
    elif spec.mode == "mpc":
        from secptune.engine import Context, EngineConfig
        from secptune.nn import encoder as E

        ctx = Context(EngineConfig())
        weights = E.share_weights(ctx, params, private=spec.weights == "private")
    try:
        res = evaluate(spec, cfg, params, tok, task, anchors, tune_cfg, ctx, weights, state, test=test,
                       announce=announce)
    except BaseException as e:
        if announce is not None:
            remote.stop(False, f"the client stopped: {type(e).__name__}: {e}")
        raise
    if announce is not None:
        remote.stop(True)
    if ctx is not None:
        res["rounds"] = ctx.chan.rounds
        res["opened"] = sorted({o.tag for o in ctx.chan.openings if not o.masked})
    return res
