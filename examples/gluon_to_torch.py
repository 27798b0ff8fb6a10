"""Port a model trained with MXNet Gluon to PyTorch, and check that both predict the same."""

import numpy as np

from backend_compare.backends import get_backend, mlp_spec

rng = np.random.default_rng(0)
X = rng.uniform(-3, 3, size=(256, 1))
y = np.sin(X) + rng.normal(0.0, 0.05, size=X.shape)
spec = mlp_spec(1, (13,), 1, "tanh")

gluon = get_backend("mxnet")(spec, dtype="float64", optimizer="adam", lr=0.01)
gluon.fit(X, y, epochs=100, batch_size=16, seed=0)
pytorch = get_backend("torch")(spec, dtype="float64")
pytorch.set_params(gluon.params_)  # Dense.weight (units, in_units) and Linear.weight (out, in): same layout

gap = np.abs(pytorch.predict(X) - gluon.predict(X)).max()
print(f"gluon final loss {gluon.loss(X, y):.4f}; largest prediction gap after porting: {gap:.1e}")
assert gap < 1e-12, "the ported model predicts differently"
