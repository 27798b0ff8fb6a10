"""The reference row: the exact minimiser of the run's training objective for a single linear layer.

Solved in float64 with NumPy's linear algebra, independently of every backend (the numpy backend
included), so "how far from the best this model can do on this data" is a measured number:

- mse / half-mse: least squares (`numpy.linalg.lstsq`); with weight decay, ridge regression on the
  same augmented system, since every backend applies the L2 term to weights and biases alike;
- huber: iteratively reweighted least squares, then exact Newton steps on the partition into
  quadratic and linear residuals until it no longer changes (the objective is piecewise quadratic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IRLS_ITERATIONS = 500
NEWTON_ITERATIONS = 50


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
    return float(np.mean(elementwise_loss(predict(X, params) - y, loss, huber_delta)))


def predict(X: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    output = np.asarray(X, dtype=np.float64) @ params["0.weight"].T  # (n, out)
    return output + params["0.bias"] if "0.bias" in params else output


def solve(X: np.ndarray, y: np.ndarray, *, bias: bool, loss: str, huber_delta: float,
          weight_decay: float) -> Optimum:
    """Minimise mean(loss(X·Wᵀ + b − y)) + ½·weight_decay·(‖W‖² + ‖b‖²) over W (out, in) and b (out,)."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    design = np.hstack([X, np.ones((len(X), int(bias)))])  # (n, in[+1])
    count = y.size  # the loss is a mean over every element
    columns = [_solve_column(design, y[:, j], count, loss, huber_delta, weight_decay) for j in range(y.shape[1])]
    theta = np.stack(columns, axis=1)  # (in[+1], out)
    params = {"0.weight": theta[: X.shape[1]].T.copy()}
    if bias:
        params["0.bias"] = theta[-1].copy()
    gradient = design.T @ _loss_derivative(design @ theta - y, loss, huber_delta) / count + weight_decay * theta
    return Optimum(row_name(loss, weight_decay), params, float(np.linalg.norm(gradient)))


def _loss_derivative(residual: np.ndarray, loss: str, huber_delta: float) -> np.ndarray:
    if loss == "mse":
        return 2.0 * residual
    if loss == "half-mse":
        return residual
    return np.clip(residual, -huber_delta, huber_delta)


def _ridge(design: np.ndarray, target: np.ndarray, penalty: float, row_weights: np.ndarray | None = None) -> np.ndarray:
    """argmin Σ wᵢ(aᵢθ − tᵢ)² + penalty·‖θ‖², by lstsq on the augmented system (no normal equations)."""
    if row_weights is not None:
        root = np.sqrt(row_weights)
        design, target = design * root[:, None], target * root
    if penalty:
        design = np.vstack([design, np.sqrt(penalty) * np.eye(design.shape[1])])
        target = np.concatenate([target, np.zeros(design.shape[1])])
    return np.linalg.lstsq(design, target, rcond=None)[0]


def _solve_column(design: np.ndarray, target: np.ndarray, count: int, loss: str, huber_delta: float,
                  weight_decay: float) -> np.ndarray:
    # mse: (2/count)·Aᵀr + wd·θ = 0 is ridge with penalty wd·count/2; half-mse: penalty wd·count.
    if loss in ("mse", "half-mse"):
        return _ridge(design, target, weight_decay * count / (2.0 if loss == "mse" else 1.0))
    penalty = weight_decay * count
    theta = _ridge(design, target, penalty)
    for _ in range(IRLS_ITERATIONS):  # Huber's weights: 1 inside δ, δ/|r| outside (a majorise-minimise step)
        residual = design @ theta - target
        weights = np.minimum(1.0, huber_delta / np.maximum(np.abs(residual), 1e-300))
        updated = _ridge(design, target, penalty, weights)
        converged = np.max(np.abs(updated - theta)) <= 1e-12 * (1.0 + np.max(np.abs(theta)))
        theta = updated
        if converged:
            break
    for _ in range(NEWTON_ITERATIONS):  # exact on a fixed partition: quadratic rows solved, linear rows constant
        residual = design @ theta - target
        quadratic = np.abs(residual) <= huber_delta
        signs = np.where(quadratic, 0.0, np.sign(residual))
        # Σ_quad aᵢ(aᵢθ − tᵢ) + δ·Σ_lin sᵢaᵢ + penalty·θ = 0
        matrix = design[quadratic].T @ design[quadratic] + penalty * np.eye(design.shape[1])
        rhs = design[quadratic].T @ target[quadratic] - huber_delta * (design.T @ signs)
        try:
            newton = np.linalg.solve(matrix, rhs)
        except np.linalg.LinAlgError:
            break  # no curvature on this partition: IRLS's answer stands
        if not np.all(np.isfinite(newton)) or _huber_objective(design, target, newton, huber_delta, penalty) > \
                _huber_objective(design, target, theta, huber_delta, penalty):
            break
        stable = np.array_equal(np.abs(design @ newton - target) <= huber_delta, quadratic)
        theta = newton
        if stable:
            break
    return theta


def _huber_objective(design: np.ndarray, target: np.ndarray, theta: np.ndarray, delta: float, penalty: float) -> float:
    """count × (mean Huber loss + ½·wd·‖θ‖²): what IRLS and the Newton steps minimise."""
    return float(elementwise_loss(design @ theta - target, "huber", delta).sum() + 0.5 * penalty * theta @ theta)
