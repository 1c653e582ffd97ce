"""Task metrics: accuracy, and F1 of the positive class (label 1) for MRPC."""

from __future__ import annotations

import numpy as np


def accuracy(pred, gold) -> float:
    pred, gold = np.asarray(pred), np.asarray(gold)
    if pred.shape != gold.shape or pred.size == 0:
        raise ValueError(f"accuracy: {pred.shape} predictions for {gold.shape} labels")
    return float(np.mean(pred == gold))


def f1(pred, gold, positive: int = 1) -> float:
    pred, gold = np.asarray(pred), np.asarray(gold)
    if pred.shape != gold.shape or pred.size == 0:
        raise ValueError(f"f1: {pred.shape} predictions for {gold.shape} labels")
    tp = int(np.sum((pred == positive) & (gold == positive)))
    fp = int(np.sum((pred == positive) & (gold != positive)))
    fn = int(np.sum((pred != positive) & (gold == positive)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def score(metric: str, pred, gold) -> float:
    if metric == "accuracy":
        return accuracy(pred, gold)
    if metric == "f1":
        return f1(pred, gold)
    raise ValueError(f"unknown metric {metric!r} (accuracy, f1)")


def paired_standard_errors(metric: str, pred_a, pred_b, gold, resamples: int = 2000, seed: int = 0) -> tuple:
    """Bootstrap standard errors of the metric of two predictors on the same examples
    and of their difference (a - b), resampling examples with replacement (a fixed
    seed: the same data give the same numbers).  The difference's error is the paired
    one: examples both get right or both get wrong do not add to it."""
    pred_a, pred_b, gold = np.asarray(pred_a), np.asarray(pred_b), np.asarray(gold)
    if not (pred_a.shape == pred_b.shape == gold.shape) or gold.size == 0:
        raise ValueError(f"paired_standard_errors: shapes {pred_a.shape}, {pred_b.shape}, {gold.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, gold.size, size=(resamples, gold.size))
    a = np.array([score(metric, pred_a[i], gold[i]) for i in idx])
    b = np.array([score(metric, pred_b[i], gold[i]) for i in idx])
    return float(a.std(ddof=1)), float(b.std(ddof=1)), float((a - b).std(ddof=1))
