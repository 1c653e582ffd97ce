"""The ``secptune`` command.  Subcommands grow with later work (tuning, eval, party)."""

from __future__ import annotations

import argparse
import sys


def _costs(args) -> int:
    from secptune.engine.costs import DECLARED

    print(f"{'protocol':<14} {'rounds':>6}  {'B/elem per server (S0, S1, S2)':<34} where")
    for name, d in DECLARED.items():
        per = ", ".join(f"{b:.2f}" for b in d.server_bytes)
        extra = f" (client {d.client_bytes:.0f})" if d.client_bytes else ""
        print(f"{name:<14} {d.rounds:>6}  {per + extra:<34} {d.where}")
    return 0


def _selftest(args) -> int:
    """A quick end-to-end check: share, multiply, compare, open to the client."""
    import numpy as np

    from secptune.engine import CLIENT, Context, EngineConfig, SharedTensor

    ctx = Context(EngineConfig(seed=args.seed))
    rng = np.random.default_rng(args.seed)
    a, b = rng.normal(size=1000), rng.normal(size=1000)
    x, y = SharedTensor.from_client(ctx, a), SharedTensor.from_client(ctx, b)
    prod = (x * y).reveal("selftest/prod", to=CLIENT)
    less = x.lt(y).reveal("selftest/lt", to=CLIENT)
    err = float(np.abs(prod - a * b).max())
    ok = err < 1e-4 and np.array_equal(less, (a < b).astype(np.int64))
    c = ctx.chan.cost()
    print(f"mul max abs err {err:.2e}; lt {'exact' if ok else 'WRONG'}; "
          f"{c.rounds} rounds, bytes sent {c.bytes_sent}; openings: "
          + ", ".join(o.tag for o in ctx.chan.openings))
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="secptune", description="Privacy-preserving prompt tuning with 3-party MPC")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("costs", help="print the declared communication cost of each protocol")
    sp.set_defaults(fn=_costs)
    sp = sub.add_parser("selftest", help="share, multiply, compare and open a small random example")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(fn=_selftest)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
