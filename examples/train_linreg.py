"""Research code: fit one linear regression with every installed backend, on your own arrays."""

import numpy as np

from backend_compare.backends import Linear, available_backends, get_backend, make_spec

rng = np.random.default_rng(0)
X = rng.normal(size=(1000, 2))
y = X @ np.array([2.0, -3.4]) + 4.2 + rng.normal(0.0, 0.01, size=1000)
spec = make_spec([Linear(2, 1)])
start = {"0.weight": np.zeros((1, 2)), "0.bias": np.zeros(1)}

for name in available_backends():
    model = get_backend(name)(spec, dtype="float64", optimizer="sgd", lr=0.03)
    model.set_params(start)  # the same start everywhere, so any difference is the framework's
    model.fit(X, y, epochs=3, batch_size=10, seed=0)
    w, b = model.params_["0.weight"][0], model.params_["0.bias"][0]
    print(f"{name:6s} w = [{w[0]:.5f}, {w[1]:.5f}]  b = {b:.5f}  loss = {model.loss(X, y):.3e}")
