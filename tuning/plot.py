"""The learning curve of a run folder as a PNG: training loss and dev metric against model calls.

Needs matplotlib (``pip install -e ".[plot]"``); the rest of secptune does not.
"""

from __future__ import annotations

import json
from pathlib import Path


def plot_run(run: Path, out: Path | None = None) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install -e '.[plot]'") from None
    log_path = Path(run) / "log.jsonl"
    if not log_path.exists():
        raise FileNotFoundError(f"{log_path}: missing (is {run} a tuning run?)")
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{log_path}: no generations yet")
    cfg = json.loads((Path(run) / "config.json").read_text())
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["calls"] for r in rows], [r["best_loss"] for r in rows], label="train loss (best of generation)")
    ax.set_xlabel("model calls")
    ax.set_ylabel("cross-entropy")
    dev = [r for r in rows if "dev_metric" in r]
    if dev:
        ax2 = ax.twinx()
        ax2.plot([r["calls"] for r in dev], [r["dev_metric"] for r in dev], "o-", color="tab:orange",
                 label="dev metric")
        ax2.set_ylabel("dev metric")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title(f"{cfg['task']} {cfg['split']} ({cfg['mode']})")
    fig.tight_layout()
    out = Path(out) if out else Path(run) / "learning_curve.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
