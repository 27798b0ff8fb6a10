"""The reference row of softmax regression: the minimiser of the run's own objective, mean multinomial
cross-entropy of a single linear layer plus ½·weight_decay·(‖W‖² + ‖b‖²), solved in float64 with NumPy
and SciPy, independently of every backend.

- Newton's method with a backtracking line search on all K classes' weights at once. Without weight decay
  the objective is flat along "add the same vector to every class" (softmax ignores it), so each step is
  the least-norm solution of the Newton system; with weight decay the objective is strictly convex.
- Without weight decay a minimiser exists only when no classes can be separated: otherwise growing the
  weights along the separating direction lowers the loss for ever (the optimum lies at infinity). Newton
  converging with no row fitted to near certainty says there is none; an iterate that puts every training
  row strictly in its own class proves complete separation; anything else is decided exactly by a linear
  programme (Albert & Anderson's
  condition for the multinomial model): is there a direction W with (w_y − w_k)·x ≥ 0 for every row and
  every other class k, strictly for some? The pairs of classes it separates are named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEWTON_ITERATIONS = 100
GRADIENT_TOLERANCE = 1e-11  # of the mean objective's gradient, float64: converged to rounding
CERTAIN = 1e-6  # 1 − p below this for a row at the end of Newton: look for a separation
SEPARATION_TOLERANCE = 1e-7  # an LP slack above this (of at most 1) is a separating direction


@dataclass(frozen=True)
class SoftmaxOptimum:
    name: str
    params: dict[str, np.ndarray] | None  # canonical layout, float64; None when no finite minimiser exists
    gradient_norm: float
    separated: list[tuple[int, int]]  # pairs of classes the training split separates (empty: a finite optimum)


def row_name(weight_decay: float) -> str:
    return "L2 cross-entropy optimum" if weight_decay else "cross-entropy optimum"


def logits(X: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    output = np.asarray(X, dtype=np.float64) @ params["0.weight"].T
    return output + params["0.bias"] if "0.bias" in params else output


def mean_cross_entropy(X: np.ndarray, labels: np.ndarray, params: dict[str, np.ndarray]) -> float:
    z = logits(X, params)
    z -= z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels]))


def solve(X: np.ndarray, labels: np.ndarray, classes: int, *, bias: bool, weight_decay: float) -> SoftmaxOptimum:
    """Minimise the objective over W (classes, in) and b (classes,); labels are indices 0…classes−1."""
    design = np.asarray(X, dtype=np.float64)
    if bias:
        design = np.hstack([design, np.ones((len(design), 1))])
    labels = np.asarray(labels).reshape(-1).astype(np.intp)
    theta, gradient_norm, separating = _newton(design, labels, classes, weight_decay)
    name = row_name(weight_decay)
    if separating:  # every row strictly in its class: every pair of classes is separated
        return SoftmaxOptimum(name, None, float("nan"), [(k, j) for k in range(classes) for j in range(k + 1, classes)
                                                         if {k, j} <= set(labels.tolist())])
    if not weight_decay and _near_certain(design, labels, theta):
        separated = separated_pairs(design, labels, classes)
        if separated:
            return SoftmaxOptimum(name, None, float("nan"), separated)
    params = {"0.weight": theta[:, : X.shape[1]].copy()}
    if bias:
        params["0.bias"] = theta[:, -1].copy()
    return SoftmaxOptimum(name, params, gradient_norm, [])


def _near_certain(design: np.ndarray, labels: np.ndarray, theta: np.ndarray) -> bool:
    """Whether some row is fitted to within CERTAIN of probability 1: at a converged iterate a separation
    needs such rows (their share of the gradient, (1 − p)·x, is all that is left), so only then is the
    linear programme, slow on large data, run."""
    z = design @ theta.T
    z -= z.max(axis=1, keepdims=True)
    own = z[np.arange(len(z)), labels] - np.log(np.exp(z).sum(axis=1))  # log p of the row's own class
    return bool(np.any(-np.expm1(own) < CERTAIN))


def _objective(design: np.ndarray, onehot: np.ndarray, theta: np.ndarray,
               weight_decay: float) -> tuple[float, np.ndarray, np.ndarray]:
    """The objective, its gradient (classes, columns) and the softmax probabilities (n, classes)."""
    z = design @ theta.T
    z -= z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    total = exp.sum(axis=1, keepdims=True)
    probabilities = exp / total
    n = len(design)
    value = float(np.sum(onehot * (np.log(total) - z)) / n + 0.5 * weight_decay * np.sum(theta * theta))
    gradient = (probabilities - onehot).T @ design / n + weight_decay * theta
    return value, gradient, probabilities


def _newton(design: np.ndarray, labels: np.ndarray, classes: int,
            weight_decay: float) -> tuple[np.ndarray, float, bool]:
    """The minimiser, its gradient's norm, and whether (without weight decay) an iterate separated every
    row, which ends the search: no finite minimiser exists then."""
    n, columns = design.shape
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), labels] = 1.0
    theta = np.zeros((classes, columns))
    value, gradient, probabilities = _objective(design, onehot, theta, weight_decay)
    rows = np.arange(n)
    for _ in range(NEWTON_ITERATIONS):
        if np.linalg.norm(gradient) <= GRADIENT_TOLERANCE:
            break
        if not weight_decay:  # every row's own class strictly the most probable: separated
            others = probabilities.copy()
            others[rows, labels] = -1.0
            if np.all(probabilities[rows, labels] > others.max(axis=1)):
                return theta, float(np.linalg.norm(gradient)), True
        # Hessian of the mean cross-entropy: Σ_i (diag(p_i) − p_i p_iᵀ) ⊗ x_i x_iᵀ / n, class-major.
        outer = (probabilities[:, :, None] * design[:, None, :]).reshape(n, classes * columns)
        hessian = -(outer.T @ outer)
        for k in range(classes):
            block = slice(k * columns, (k + 1) * columns)
            hessian[block, block] += (design * probabilities[:, k : k + 1]).T @ design
        hessian /= n
        hessian[np.diag_indices_from(hessian)] += weight_decay
        step = np.linalg.lstsq(hessian, gradient.reshape(-1), rcond=None)[0].reshape(classes, columns)
        size = 1.0
        while size > 1e-10:  # backtracking: the full Newton step near the optimum, shorter far from it
            trial = theta - size * step
            trial_value, trial_gradient, trial_probabilities = _objective(design, onehot, trial, weight_decay)
            if trial_value <= value - 1e-4 * size * float(np.sum(gradient * step)) or \
                    (np.linalg.norm(trial_gradient) < np.linalg.norm(gradient) and trial_value <= value):
                break
            size /= 2
        else:
            break  # no step lowers it: at the optimum to rounding
        theta, value, gradient, probabilities = trial, trial_value, trial_gradient, trial_probabilities
    return theta, float(np.linalg.norm(gradient)), False


def separated_pairs(design: np.ndarray, labels: np.ndarray, classes: int) -> list[tuple[int, int]]:
    """The pairs of classes (y, k) that some direction W separates ((w_y − w_k)·x ≥ 0 for every row and
    other class k, > 0 for these): found by maximising the margins' slacks, each capped at 1, over such
    directions. Empty when none exists, that is when the minimiser is finite."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n, columns = design.shape
    every = np.broadcast_to(np.arange(classes), (n, classes))
    other = every[every != labels[:, None]]  # each row's other classes, row by row: (n·(classes−1),)
    rows = np.repeat(np.arange(n), classes - 1)
    count = len(other)
    # Constraint j: s_j − (w_{y_i} − w_k)·x_i ≤ 0; variables: W (classes·columns), then the slacks s.
    index = np.arange(count)
    mine = labels[rows][:, None] * columns + np.arange(columns)
    theirs = other[:, None] * columns + np.arange(columns)
    values = design[rows]
    matrix = coo_matrix((np.concatenate([-values.ravel(), values.ravel(), np.ones(count)]),
                         (np.concatenate([np.repeat(index, columns), np.repeat(index, columns), index]),
                          np.concatenate([mine.ravel(), theirs.ravel(), classes * columns + index]))),
                        shape=(count, classes * columns + count)).tocsr()
    cost = np.concatenate([np.zeros(classes * columns), -np.ones(count)])
    bounds = [(None, None)] * (classes * columns) + [(0.0, 1.0)] * count
    result = linprog(cost, A_ub=matrix, b_ub=np.zeros(count), bounds=bounds, method="highs")
    if result.status != 0:
        return []  # the LP is always feasible (W = 0) and bounded; HiGHS failing is not a separation
    slack = result.x[classes * columns :]
    found = np.flatnonzero(slack > SEPARATION_TOLERANCE)
    return sorted({(min(int(labels[rows[j]]), int(other[j])), max(int(labels[rows[j]]), int(other[j])))
                   for j in found})
