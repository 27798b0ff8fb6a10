"""The standalone replay script of a numpy step (compare.py explain --out): NumPy: the forward, backward and update
written out by hand, no import of this package. comparison/repro.py puts its prologue (the bundle's arrays,
LAYERS, OPTIONS and show) before it; the numpy backend's own code is the model it follows."""

SCRIPT = r'''
ACT = {"tanh": (np.tanh, lambda a, z: 1.0 - z * z), "relu": (lambda a: np.maximum(a, 0), lambda a, z: (a > 0) * 1.0),
       "sigmoid": (lambda a: 1.0 / (1.0 + np.exp(-a)), lambda a, z: z * (1.0 - z))}
acts = [X]
for i, layer in enumerate(LAYERS):
    a = acts[-1]
    if layer[0] == "linear":
        z = a @ params[f"{i}.weight"].T + (params[f"{i}.bias"] if layer[3] else 0)
    else:
        z = ACT[layer[0]][0](a)
    acts.append(z)
diff = acts[-1] - y
if OPTIONS["loss"] == "cross-entropy":  # y holds class indices; stable log-softmax, gradient softmax − one-hot
    z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
    rows, labels = np.arange(len(z)), y[:, 0].astype(int)
    loss = np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, labels])
    g = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    g[rows, labels] -= 1.0
    g /= len(z)
elif OPTIONS["loss"] == "huber":
    d = OPTIONS["huber_delta"]
    loss = np.mean(np.where(np.abs(diff) <= d, 0.5 * diff * diff, d * (np.abs(diff) - 0.5 * d)))
    g = np.where(np.abs(diff) <= d, diff, d * np.sign(diff)) / diff.size
else:
    scale = 0.5 if OPTIONS["loss"] == "half-mse" else 1.0
    loss, g = scale * np.mean(diff * diff), diff * (2.0 * scale / diff.size)
grads = {}
for i in reversed(range(len(LAYERS))):
    layer, a = LAYERS[i], acts[i]
    if layer[0] == "linear":
        grads[f"{i}.weight"] = g.T @ a
        if layer[3]:
            grads[f"{i}.bias"] = g.sum(axis=0)
        g = g @ params[f"{i}.weight"]
    else:
        g = g * ACT[layer[0]][1](a, acts[i + 1])
updates, t, lr, wd = {}, STEP + 1, OPTIONS["lr"], OPTIONS["weight_decay"]
for name, p in params.items():
    gw = grads[name] + wd * p
    if OPTIONS["optimizer"] == "adam":
        m = BETA1 * state["m"][name] + (1 - BETA1) * gw
        v = BETA2 * state["v"][name] + (1 - BETA2) * gw * gw
        updates[name] = -lr * (m / (1 - BETA1**t)) / (np.sqrt(v / (1 - BETA2**t)) + EPS)
    elif OPTIONS["momentum"]:
        updates[name] = -lr * (OPTIONS["momentum"] * state["velocity"][name] + gw)
    else:
        updates[name] = -lr * gw
show(loss, grads, updates)
'''
