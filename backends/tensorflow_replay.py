"""The standalone replay script of a tensorflow step (compare.py explain --out): Keras layers, a Keras loss and
optimiser under tf.GradientTape, no import of this package. comparison/repro.py puts its prologue (the bundle's
arrays, LAYERS, OPTIONS and show) before it; the tensorflow backend's own code is the model it follows."""

SCRIPT = r'''
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
import tensorflow as tf

keras.config.set_floatx(DTYPE)  # Keras's learning-rate variable takes floatx
model = keras.Sequential([keras.Input((LAYERS[0][1],), dtype=DTYPE),
                          *[keras.layers.Dense(l[2], use_bias=l[3], dtype=DTYPE) if l[0] == "linear"
                            else keras.layers.Activation(l[0], dtype=DTYPE) for l in LAYERS]])
variables = {}
for i, layer in enumerate(model.layers):
    if isinstance(layer, keras.layers.Dense):
        layer.kernel.assign(params[f"{i}.weight"].T)  # Keras kernels are (in, out)
        variables[f"{i}.weight"] = (layer.kernel, True)
        if layer.use_bias:
            layer.bias.assign(params[f"{i}.bias"])
            variables[f"{i}.bias"] = (layer.bias, False)
mse = keras.losses.MeanSquaredError(dtype=DTYPE)
loss_fn = {"mse": mse, "half-mse": lambda t, o: 0.5 * mse(t, o),
           "huber": keras.losses.Huber(delta=OPTIONS["huber_delta"], dtype=DTYPE),
           "cross-entropy": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=DTYPE)}[OPTIONS["loss"]]
adam = OPTIONS["optimizer"] == "adam"
# Keras casts Python-float hyper-parameters through float32: np.float64 keeps them exact
opt = (keras.optimizers.Adam(OPTIONS["lr"], beta_1=np.float64(BETA1), beta_2=np.float64(BETA2)) if adam
       else keras.optimizers.SGD(OPTIONS["lr"], momentum=np.float64(OPTIONS["momentum"] or 0.0)))
trainable = model.trainable_variables
opt.build(trainable)
opt.iterations.assign(STEP)
lr = float(opt.learning_rate.numpy())
for name, (variable, kernel) in variables.items():
    slot = opt._get_variable_index(variable)
    targets = ({"m": (opt._momentums[slot], 1.0), "v": (opt._velocities[slot], 1.0)} if adam else
               {"velocity": (opt.momentums[slot], -lr)} if OPTIONS["momentum"] else {})  # Keras: m = -lr * buffer
    for kind, (target, scale) in targets.items():
        value = state[kind][name] * scale
        target.assign(value.T if kernel else value)
if adam:  # Keras adds ε to √v: ε·√(1−β₂ᵗ) makes it the paper's ε on √v̂
    opt.epsilon = tf.Variable(EPS * np.sqrt(1 - BETA2 ** (STEP + 1)), dtype=DTYPE)
with tf.GradientTape() as tape:
    loss = loss_fn(tf.constant(y), model(tf.constant(X), training=True))
grads = tape.gradient(loss, trainable)
wd = OPTIONS["weight_decay"]  # Keras's weight_decay is decoupled; torch's L2 term goes into the gradient
opt.apply_gradients(zip([g + wd * v for g, v in zip(grads, trainable)] if wd else grads, trainable))
by_variable = {id(v): g for v, g in zip(trainable, grads)}
grad_out = {name: by_variable[id(v)].numpy().T if kernel else by_variable[id(v)].numpy()
            for name, (v, kernel) in variables.items()}
show(float(loss), grad_out, {name: (v.numpy().T if kernel else v.numpy()) - params[name]
                             for name, (v, kernel) in variables.items()})
'''
