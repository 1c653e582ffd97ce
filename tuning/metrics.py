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
