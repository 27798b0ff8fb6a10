"""A parity test for your own model, using the fixtures that installing backend-compare gives pytest:

    pytest test_my_model_parity.py                      # every installed backend
    pytest test_my_model_parity.py --backends numpy,torch
"""

import numpy as np

from backend_compare.backends import mlp_spec, param_shapes

SPEC = mlp_spec(3, (8, 8), 1, "relu")
rng = np.random.default_rng(42)
X, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
START = {name: rng.normal(0.0, 0.5, size=shape) for name, shape in param_shapes(SPEC).items()}


def test_training_follows_the_same_path_on_every_backend(backend_parity):
    def train(backend):
        # 2^-5, momentum 0.5 and batches of 8 are exact in 32 bits, so MXNet's float32 optimiser
        # hyper-parameters cost nothing and float64 parity holds to 1e-9.
        model = backend(SPEC, dtype="float64", optimizer="momentum", lr=2**-5, momentum=0.5)
        model.set_params(START)
        model.fit(X, y, epochs=5, batch_size=8, seed=0)
        return {**model.params_, "step losses": model.loss_history_}

    backend_parity(train)  # every pair, every parameter and step loss, float64 tolerances


def test_loss_goes_down(backend):
    model = backend(SPEC, dtype="float64", optimizer="adam", lr=0.01)
    model.set_params(START)
    before = model.loss(X, y)
    assert model.fit(X, y, epochs=20, batch_size=16).loss(X, y) < before
