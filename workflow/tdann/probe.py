"""Linear probes: how much of a labelled stimulus property a network's features carry.

The paper's task metric is a linear probe on ImageNet (TDANN at alpha = 0.25: ~42-44% top-1). The laptop analogue
is a probe on labelled held-out stimuli the pipeline makes: the five localizer categories for the ventral stream,
motion direction of drifting gratings and random dots for the dorsal one. Features are the network's pooled
(penultimate) embedding: the last tapped block's responses averaged over space, as the encoder's ``embed`` does.

The probe is multinomial logistic regression on standardised features with an L2 penalty chosen by k-fold
cross-validation on the training split only; accuracy is measured once on the test split and reported with its
exact (Clopper-Pearson) 95% interval beside chance (1 / classes). A probe "beats chance" when that interval lies
above chance. numpy / scipy only: the metrics steps do not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, special

from .analysis import clopper_pearson

#: L2 penalties (per sample, on standardised features) searched by cross-validation.
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class ProbeError(ValueError):
    """Features, labels or split that a probe cannot be fitted on."""


def pooled_features(responses: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """(S, C*H*W) channel-major block responses -> (S, C) spatial means: the encoder's pooled embedding."""
    r = np.asarray(responses, dtype=np.float64)
    c = int(shape[0])
    if r.ndim != 2 or r.shape[1] % c:
        raise ProbeError(f"responses of shape {r.shape} do not split into {c} channels")
    return r.reshape(r.shape[0], c, -1).mean(axis=2)


def _fit(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float) -> np.ndarray:
    """Weights (D + 1, K) of softmax regression minimising mean cross-entropy + l2 * |W|^2 (bias unpenalised)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    onehot = np.eye(n_classes)[y]

    def loss(w_flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = w_flat.reshape(d + 1, n_classes)
        logits = xb @ w
        logp = logits - special.logsumexp(logits, axis=1, keepdims=True)
        value = -np.mean(np.sum(onehot * logp, axis=1)) + l2 * np.sum(w[:-1] ** 2)
        grad = xb.T @ (np.exp(logp) - onehot) / n
        grad[:-1] += 2 * l2 * w[:-1]
        return float(value), grad.ravel()

    res = optimize.minimize(loss, np.zeros((d + 1) * n_classes), jac=True, method="L-BFGS-B",
                            options={"maxiter": 500})
    return res.x.reshape(d + 1, n_classes)


def _predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.argmax(np.hstack([x, np.ones((len(x), 1))]) @ w, axis=1)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return [(a - mu) / sd for a in (train, *others)]


def linear_probe(features: Any, labels: Any, test: Any, folds: int = 4, l2_grid: Sequence[float] = L2_GRID,
                 seed: int = 0) -> dict[str, Any]:
    """Fit on ``~test`` rows, score on ``test`` rows; the L2 penalty is picked by stratified k-fold CV on train.

    Returns accuracy, n_test, n_train, n_classes, chance (1 / classes), the 95% Clopper-Pearson interval
    (``ci_lo``, ``ci_hi``), ``above_chance`` (interval above chance), the chosen ``l2`` and the CV accuracy.
    """
    x = np.asarray(features, dtype=np.float64)
    lab = np.asarray(labels)
    is_test = np.asarray(test, dtype=bool)
    if x.ndim != 2 or len(x) != len(lab) or len(lab) != len(is_test):
        raise ProbeError(f"features {x.shape}, labels {lab.shape} and test mask {is_test.shape} must agree")
    if not np.all(np.isfinite(x)):
        raise ProbeError("features contain non-finite values")
    classes, y = np.unique(lab, return_inverse=True)
    k = len(classes)
    train = ~is_test
    if k < 2 or not is_test.any() or not train.any():
        raise ProbeError(f"a probe needs >= 2 classes and non-empty train and test splits; got {k} classes, "
                         f"{int(train.sum())} train, {int(is_test.sum())} test")
    missing = sorted(set(classes[y[is_test]]) - set(classes[y[train]]))
    if missing:
        raise ProbeError(f"test classes {missing} have no training example")
    xtr, ytr, xte, yte = x[train], y[train], x[is_test], y[is_test]
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(ytr), dtype=int)
    for c in range(k):  # stratified folds
        rows = rng.permutation(np.flatnonzero(ytr == c))
        fold_of[rows] = np.arange(len(rows)) % folds
    cv = {}
    for l2 in l2_grid:
        hits = 0
        for f in range(folds):
            inner, held = fold_of != f, fold_of == f
            if not held.any() or not inner.any():
                continue
            a, b = _standardise(xtr[inner], xtr[held])
            hits += int(np.sum(_predict(_fit(a, ytr[inner], k, l2), b) == ytr[held]))
        cv[l2] = hits / len(ytr)
    best = max(l2_grid, key=lambda v: (cv[v], v))  # ties: the stronger penalty
    a, b = _standardise(xtr, xte)
    correct = int(np.sum(_predict(_fit(a, ytr, k, best), b) == yte))
    lo, hi = clopper_pearson(correct, len(yte))
    chance = 1.0 / k
    return {"accuracy": correct / len(yte), "n_test": int(len(yte)), "n_train": int(len(ytr)), "n_classes": k,
            "chance": chance, "ci_lo": lo, "ci_hi": hi, "above_chance": bool(lo > chance), "l2": float(best),
            "cv_accuracy": float(cv[best])}


def probe_split(params: Any, stimset: str) -> tuple[str, np.ndarray] | None:
    """(label column, test mask) of a stimulus set, or None for sets without a probe.

    categories: every other image of each category is held out; drifting gratings: the second start phase is held
    out (the probe must generalise across phase); random dots: the second dot seed (``repeat``) is held out.
    """
    if stimset == "categories":
        rank = params.groupby("category").cumcount().to_numpy()
        return "category", rank % 2 == 1
    if stimset == "drifting" and "phase" in params.columns and params["phase"].nunique() >= 2:
        first = np.sort(params["phase"].unique())[0]
        return "direction", params["phase"].to_numpy() != first
    if stimset == "dots" and "repeat" in params.columns and params["repeat"].nunique() >= 2:
        return "direction", params["repeat"].to_numpy() != 0
    return None
