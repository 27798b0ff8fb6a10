"""The reference row: the exact minimiser of the run's training objective for a single linear layer.

Solved in float64 with NumPy's linear algebra, independently of every backend (the numpy backend
included), so "how far from the best this model can do on this data" is a measured number:

- mse / half-mse: least squares by QR (Householder, in row blocks: the float64 design never exists
  whole), then `numpy.linalg.lstsq` on the small triangular system, which gives the minimum-norm
  solution when columns are dependent; with weight decay, ridge regression on the same system
  augmented by √penalty·I, since every backend applies the L2 term to weights and biases alike;
- huber: iteratively reweighted least squares, then exact Newton steps on the partition into
  quadratic and linear residuals until it no longer changes (the objective is piecewise quadratic).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

IRLS_ITERATIONS = 500
NEWTON_ITERATIONS = 50
BLOCK_BYTES = 2**18  # float64 design rows made at once: a few copies of a block are the peak


@dataclass(frozen=True)
class Optimum:
    name: str  # the row's name in every table: what the row is
    params: dict[str, np.ndarray]  # canonical layout, float64
    gradient_norm: float  # of the objective at `params`: how exactly it was solved


def row_name(loss: str, weight_decay: float) -> str:
    if loss == "huber":
        return "huber-optimum"
    return "ridge-optimum" if weight_decay else "least-squares"


def elementwise_loss(residual: np.ndarray, loss: str, huber_delta: float) -> np.ndarray:
    """The task's loss per element of ŷ − y, in float64 (the definitions of backends.base.Backend)."""
    if loss == "mse":
        return residual**2
    if loss == "half-mse":
        return 0.5 * residual**2
    magnitude = np.abs(residual)
    return np.where(magnitude <= huber_delta, 0.5 * residual**2, huber_delta * (magnitude - 0.5 * huber_delta))


def mean_loss(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray], loss: str, huber_delta: float) -> float:
    total = sum(float(elementwise_loss(predict(X[rows], params) - np.asarray(y[rows], dtype=np.float64), loss,
                                       huber_delta).sum()) for rows in _blocks(len(X), X.shape[1] + 1))
    return total / y.size


def predict(X: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    output = np.asarray(X, dtype=np.float64) @ params["0.weight"].T  # (n, out)
    return output + params["0.bias"] if "0.bias" in params else output


def solve(X: np.ndarray, y: np.ndarray, *, bias: bool, loss: str, huber_delta: float,
          weight_decay: float) -> Optimum:
    """Minimise mean(loss(X·Wᵀ + b − y)) + ½·weight_decay·(‖W‖² + ‖b‖²) over W (out, in) and b (out,)."""
    design = _Design(X, bias)
    count = y.size  # the loss is a mean over every element
    columns = [_solve_column(design, y[:, j], count, loss, huber_delta, weight_decay) for j in range(y.shape[1])]
    theta = np.stack(columns, axis=1)  # (in[+1], out)
    params = {"0.weight": theta[: X.shape[1]].T.copy()}
    if bias:
        params["0.bias"] = theta[-1].copy()
    gradient = design.total(lambda rows, block: block.T @ _loss_derivative(block @ theta - y[rows], loss, huber_delta))
    gradient = gradient / count + weight_decay * theta
    return Optimum(row_name(loss, weight_decay), params, float(np.linalg.norm(gradient)))


def _blocks(rows: int, columns: int) -> Iterator[slice]:
    step = max(1, BLOCK_BYTES // (8 * columns))
    return (slice(start, min(start + step, rows)) for start in range(0, rows, step))


class _Design:
    """[X, 1] in float64, made one block of rows at a time when it is used: the data in their own dtype
    stay the only copy of the size of the data."""

    def __init__(self, X: np.ndarray, bias: bool) -> None:
        self.X, self.bias = X, bias
        self.columns = X.shape[1] + int(bias)

    def blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        for block in _blocks(len(self.X), self.columns):
            values = np.asarray(self.X[block], dtype=np.float64)
            yield block, np.hstack([values, np.ones((len(values), 1))]) if self.bias else values

    def total(self, term: Callable[[slice, np.ndarray], Any]) -> Any:
        """Σ over the blocks of term(rows, block)."""
        return sum(term(rows, block) for rows, block in self.blocks())

def _loss_derivative(residual: np.ndarray, loss: str, huber_delta: float) -> np.ndarray:
    if loss == "mse":
        return 2.0 * residual
    if loss == "half-mse":
        return residual
    return np.clip(residual, -huber_delta, huber_delta)


def _ridge(design: _Design, target: np.ndarray, penalty: float,
           row_weights: Callable[[slice, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """argmin Σ wᵢ(aᵢθ − tᵢ)² + penalty·‖θ‖², by QR of [A | t] block by block (no normal equations);
    row_weights(rows, block) gives the wᵢ of a block."""
    reduced = np.empty((0, design.columns + 1))  # R of the blocks so far, with Qᵀt as its last column
    for rows, block in design.blocks():
        augmented = np.column_stack([block, target[rows]])
        if row_weights is not None:
            augmented *= np.sqrt(row_weights(rows, block))[:, None]
        reduced = _triangle(np.vstack([reduced, augmented]))
    if penalty:
        ridge_rows = np.hstack([np.sqrt(penalty) * np.eye(design.columns), np.zeros((design.columns, 1))])
        reduced = _triangle(np.vstack([reduced, ridge_rows]))
    return np.linalg.lstsq(reduced[:, :-1], reduced[:, -1], rcond=None)[0]


def _triangle(rows: np.ndarray) -> np.ndarray:
    """R of rows = Q·R (Householder): the same least-squares problem in at most as many rows as columns."""
    triangle: np.ndarray = np.linalg.qr(rows, mode="r")  # type: ignore[assignment]  # mode "r" returns R alone
    return triangle


def _solve_column(design: _Design, target: np.ndarray, count: int, loss: str, huber_delta: float,
                  weight_decay: float) -> np.ndarray:
    # mse: (2/count)·Aᵀr + wd·θ = 0 is ridge with penalty wd·count/2; half-mse: penalty wd·count.
    if loss in ("mse", "half-mse"):
        return _ridge(design, target, weight_decay * count / (2.0 if loss == "mse" else 1.0))
    penalty = weight_decay * count
    theta = _ridge(design, target, penalty)

    def residual(rows: slice, block: np.ndarray, at: np.ndarray) -> np.ndarray:
        return block @ at - target[rows]

    for _ in range(IRLS_ITERATIONS):  # Huber's weights: 1 inside δ, δ/|r| outside (a majorise-minimise step)
        def huber_weights(rows: slice, block: np.ndarray, at: np.ndarray = theta) -> np.ndarray:
            return np.minimum(1.0, huber_delta / np.maximum(np.abs(residual(rows, block, at)), 1e-300))

        updated = _ridge(design, target, penalty, huber_weights)
        converged = np.max(np.abs(updated - theta)) <= 1e-12 * (1.0 + np.max(np.abs(theta)))
        theta = updated
        if converged:
            break
    for _ in range(NEWTON_ITERATIONS):  # exact on a fixed partition: quadratic rows solved, linear rows constant
        quadratic = np.concatenate([np.abs(residual(rows, block, theta)) <= huber_delta
                                    for rows, block in design.blocks()])

        def normal_terms(rows: slice, block: np.ndarray, quadratic: np.ndarray = quadratic,
                         theta: np.ndarray = theta) -> np.ndarray:
            # Σ_quad aᵢ(aᵢθ − tᵢ) + δ·Σ_lin sᵢaᵢ + penalty·θ = 0, as [matrix | rhs] of this block
            inside, outside = quadratic[rows], ~quadratic[rows]
            signs = np.sign(residual(rows, block, theta)[outside])
            rhs = block[inside].T @ target[rows][inside] - huber_delta * (block[outside].T @ signs)
            return np.column_stack([block[inside].T @ block[inside], rhs])

        terms = design.total(normal_terms)
        try:
            newton = np.linalg.solve(terms[:, :-1] + penalty * np.eye(design.columns), terms[:, -1])
        except np.linalg.LinAlgError:
            break  # no curvature on this partition: IRLS's answer stands
        if not np.all(np.isfinite(newton)) or _huber_objective(design, target, newton, huber_delta, penalty) > \
                _huber_objective(design, target, theta, huber_delta, penalty):
            break
        stable = all(np.array_equal(np.abs(residual(rows, block, newton)) <= huber_delta, quadratic[rows])
                     for rows, block in design.blocks())
        theta = newton
        if stable:
            break
    return theta


def _huber_objective(design: _Design, target: np.ndarray, theta: np.ndarray, delta: float, penalty: float) -> float:
    """count × (mean Huber loss + ½·wd·‖θ‖²): what IRLS and the Newton steps minimise."""
    total = design.total(lambda rows, block: elementwise_loss(block @ theta - target[rows], "huber", delta).sum())
    return float(total + 0.5 * penalty * theta @ theta)
