"""The learning curve of a run folder as a PNG.

Left panel: the training loss against model calls, the generation's best
candidate and its population's mean, with the untuned template's loss as a
reference line.  Right panel: the dev metric of the best prompt so far at
each dev evaluation, the untuned template's as a reference line, and the test
result (tuned and untuned, with one standard error) at the end.

Needs matplotlib (``pip install -e ".[plot]"``); the rest of secptune does not.
"""

from __future__ import annotations

import json
from pathlib import Path

from .run import read_log
from .tasks import BUILTIN


def _title(cfg: dict) -> str:
    data = "built-in sentences" if cfg.get("data") == BUILTIN else Path(cfg.get("data", "?")).name
    mode = "on shares" if cfg.get("mode") == "mpc" else "plaintext"
    extra = ", ".join(f"{k.replace('_', ' ')} {cfg[k]}" for k in ("prompt_len", "popsize", "seed") if k in cfg)
    return f"{cfg['task']} ({data}, split {cfg['split']}), {mode}" + (f": {extra}" if extra else "")


def loss_limits(lo: float, hi: float) -> tuple:
    """The loss axis's limits: at least 10% of the loss tall, so that a change of 0.001
    does not look like a collapse."""
    span = 0.1 * max(abs(hi), 1e-3)
    if hi - lo >= span:
        return lo, hi
    mid = (hi + lo) / 2
    return mid - span / 2, mid + span / 2


def plot_run(run: Path, out: Path | None = None) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install -e '.[plot]'") from None
    run = Path(run)
    log_path = run / "log.jsonl"
    if not log_path.exists():
        raise FileNotFoundError(f"{log_path}: missing (is {run} a tuning run?)")
    recs = read_log(run)
    gens = [r for r in recs if "gen" in r]
    if not gens:
        raise ValueError(f"{log_path}: no generations yet")
    untuned = next((r for r in recs if r.get("untuned")), None)
    cfg = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    metric = metrics.get("metric", "accuracy" if cfg["task"] != "mrpc" else "f1")

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    calls = [r["calls"] for r in gens]
    ax.plot(calls, [r["best_loss"] for r in gens], "o-", label="best candidate of the generation")
    if all("mean_loss" in r for r in gens):
        ax.plot(calls, [r["mean_loss"] for r in gens], "s--", color="tab:gray", label="population mean")
    if untuned is not None:
        ax.axhline(untuned["train_loss"], color="tab:red", ls=":", label="untuned template")
    ax.set_xlabel("model calls")
    ax.set_ylabel("training cross-entropy")
    ax.ticklabel_format(axis="y", useOffset=False)      # no "+0.448" offset that hides the scale
    ax.set_ylim(*loss_limits(*ax.get_ylim()))
    ax.legend(fontsize=8)
    ax.set_title("training loss", fontsize=10)

    dev = [r for r in gens if "dev_metric" in r]
    best, kept = -1.0, []
    for r in dev:                                       # the kept prompt: best dev metric so far
        best = max(best, r["dev_metric"])
        kept.append(best)
    ax2.plot([r["calls"] for r in dev], [100 * r["dev_metric"] for r in dev], "o", color="tab:orange",
             label="dev, best training prompt")
    ax2.step([r["calls"] for r in dev], [100 * k for k in kept], where="post", color="tab:orange", alpha=0.6,
             label="dev, kept prompt")
    if untuned is not None:
        ax2.axhline(100 * untuned["dev_metric"], color="tab:red", ls=":", label="dev, untuned template")
    if metrics.get("test_metric") is not None:
        x = calls[-1]
        ax2.errorbar([x - 0.015 * x], [100 * metrics["test_metric"]], yerr=[100 * (metrics.get("test_metric_se") or 0)],
                     fmt="D", color="tab:green", capsize=3,
                     label=f"test, tuned ({metrics['test_examples']} examples)")
        if metrics.get("zero_shot_metric") is not None:
            ax2.errorbar([x + 0.015 * x], [100 * metrics["zero_shot_metric"]],
                         yerr=[100 * (metrics.get("zero_shot_metric_se") or 0)],
                         fmt="x", color="tab:red", capsize=3, label="test, untuned template")
    ax2.set_xlabel("model calls")
    ax2.set_ylabel(f"{metric} (%)")
    lo, hi = ax2.get_ylim()
    ax2.set_ylim(min(lo, max(0.0, hi - 20)), max(hi, min(100.0, lo + 20)))   # at least 20 points tall
    ax2.legend(fontsize=8)
    ax2.set_title(f"dev and test {metric}", fontsize=10)
    for a in (ax, ax2):
        a.set_xlim(0, 1.05 * calls[-1])
    fig.suptitle(_title(cfg), fontsize=10)
    fig.tight_layout()
    out = Path(out) if out else run / "learning_curve.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
