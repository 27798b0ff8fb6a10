"""The standalone replay script of a mxnet step (compare.py explain --out): Gluon blocks, a Gluon loss and
gluon.Trainer, no import of this package. comparison/repro.py puts its prologue (the bundle's arrays, LAYERS,
OPTIONS and show) before it; the mxnet backend's own code is the model it follows."""

SCRIPT = r'''
import math
if "bool" not in np.__dict__:
    np.bool = bool  # MXNet 1.9.1 still uses the alias NumPy 1.24 removed
import mxnet as mx
from mxnet import autograd, gluon, nd

net = gluon.nn.HybridSequential()
for l in LAYERS:
    net.add(gluon.nn.Dense(l[2], in_units=l[1], use_bias=l[3], dtype=DTYPE) if l[0] == "linear"
            else gluon.nn.Activation(l[0]))
net.initialize(ctx=mx.cpu())
net.hybridize(static_alloc=True)
named = {}
for name in params:
    index, kind = name.split(".")
    named[name] = getattr(net[int(index)], kind)
    named[name].set_data(nd.array(params[name], dtype=DTYPE))
d = OPTIONS["huber_delta"]
loss_fn = {"mse": gluon.loss.L2Loss(weight=2.0), "half-mse": gluon.loss.L2Loss(),
           "huber": gluon.loss.HuberLoss(rho=d, weight=d),
           "cross-entropy": gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=True)}[OPTIONS["loss"]]
adam = OPTIONS["optimizer"] == "adam"
settings = ({"beta1": BETA1, "beta2": BETA2, "epsilon": EPS} if adam else {"momentum": OPTIONS["momentum"] or 0.0})
trainer = gluon.Trainer(net.collect_params(), "adam" if adam else "sgd",
                        {"learning_rate": OPTIONS["lr"], "wd": OPTIONS["weight_decay"], **settings}, kvstore=None)
updater, optimizer = trainer._updaters[0], trainer._optimizer
slot = {id(p): i for i, p in enumerate(trainer._params)}
lr32 = float(np.float32(OPTIONS["lr"]))
for name, param in named.items():  # Gluon's SGD keeps mom = -lr * torch's buffer
    i = slot[id(param)]
    if adam:
        updater.states[i] = (nd.array(state["m"][name], dtype=DTYPE), nd.array(state["v"][name], dtype=DTYPE))
    elif OPTIONS["momentum"]:
        updater.states[i] = nd.array(-state["velocity"][name] * lr32, dtype=DTYPE)
    else:
        updater.states[i] = optimizer.create_state_multi_precision(i, param.data())
    updater.states_synced[i] = True
    optimizer._index_update_count[i] = STEP
optimizer.num_update = STEP
if adam:  # MXNet adds ε to √v: ε·√(1−β₂ᵗ) makes it the paper's ε on √v̂
    optimizer.epsilon = EPS * math.sqrt(1 - BETA2 ** (STEP + 1))
with autograd.record():
    loss = loss_fn(net(nd.array(X, dtype=DTYPE)), nd.array(y, dtype=DTYPE))
loss.backward()
grads = {name: (p.grad() / len(X)).asnumpy() for name, p in named.items()}
trainer.step(len(X))
show(loss.mean().asscalar(), grads, {name: p.data().asnumpy() - params[name] for name, p in named.items()})
'''
