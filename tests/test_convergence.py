"""A sweep's jobs held to the lowest training loss of their point (convergence.against_best)."""

from __future__ import annotations

from backend_compare.comparison.convergence import against_best


def test_a_job_without_a_number_for_its_loss_is_left_unknown_not_a_crash() -> None:
    rows = [{"lr": 0.1, "seed": 0, "backend": "numpy", "status": "ok", "final_train_loss": 1.0, "initial_loss": 9.0},
            {"lr": 0.001, "seed": 0, "backend": "numpy", "status": "ok", "final_train_loss": 5.0,
             "initial_loss": 9.0},
            # a cache entry's null loss and a broken entry's initial loss
            {"lr": 0.01, "seed": 0, "backend": "numpy", "status": "ok", "final_train_loss": None, "initial_loss": 9.0},
            {"lr": 0.002, "seed": 0, "backend": "numpy", "status": "ok", "final_train_loss": 4.0,
             "initial_loss": "many"}]
    found = against_best(rows, ["lr"])
    assert found[1]["converged"] is False and "lr=0.1" in found[1]["note"]
    assert "converged" not in found[2] and "converged" not in found[3]  # no start: no path to measure
