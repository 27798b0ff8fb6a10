"""The standalone replay script of a torch step (compare.py explain --out): torch.nn layers, a torch loss and
torch.optim, no import of this package. comparison/repro.py puts its prologue (the bundle's arrays, LAYERS,
OPTIONS and show) before it; the torch backend's own code is the model it follows."""

SCRIPT = r'''
import torch
from torch import nn

ACT = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
model = nn.Sequential(*[nn.Linear(l[1], l[2], bias=l[3]) if l[0] == "linear" else ACT[l[0]]() for l in LAYERS])
model = model.to(getattr(torch, DTYPE))
model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
mse = nn.MSELoss()
loss_fn = {"mse": mse, "half-mse": lambda out, t: 0.5 * mse(out, t),
           "huber": nn.HuberLoss(delta=OPTIONS["huber_delta"]),
           "cross-entropy": lambda out, t: nn.CrossEntropyLoss()(out, t.reshape(-1).long())}[OPTIONS["loss"]]
named = dict(model.named_parameters())
if OPTIONS["optimizer"] == "adam":
    opt = torch.optim.Adam(model.parameters(), lr=OPTIONS["lr"], betas=(BETA1, BETA2), eps=EPS,
                           weight_decay=OPTIONS["weight_decay"])
    for name, p in named.items():
        opt.state[p] = {"step": torch.tensor(float(STEP)), "exp_avg": torch.from_numpy(state["m"][name]),
                        "exp_avg_sq": torch.from_numpy(state["v"][name])}
else:
    opt = torch.optim.SGD(model.parameters(), lr=OPTIONS["lr"], momentum=OPTIONS["momentum"] or 0.0,
                          weight_decay=OPTIONS["weight_decay"])
    for name, p in named.items():
        if OPTIONS["momentum"]:
            opt.state[p] = {"momentum_buffer": torch.from_numpy(state["velocity"][name])}
loss = loss_fn(model(torch.from_numpy(X)), torch.from_numpy(y))
loss.backward()
grads = {name: p.grad.numpy().copy() for name, p in named.items()}
opt.step()
show(loss.item(), grads, {name: p.detach().numpy() - params[name] for name, p in named.items()})
'''
