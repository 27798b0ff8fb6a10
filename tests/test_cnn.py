"""Convolutional models: the text grammar of --layers, the cnn task on the bundled digits and on a user's .npz
of images, float64 parity of every backend on the default CNN, and bad input refused by name before training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend_compare.backends import get_backend
from backend_compare.backends.tolerances import ALLOWANCES
from backend_compare.comparison import memory
from backend_compare.layers import AvgPool2d, Conv2d, Flatten, Input, Linear, MaxPool2d, output_shape
from backend_compare.layers.text import parse_layers
from backend_compare.tasks import get_task

DEFAULT = ("conv2d(6, 3, padding=same), relu, maxpool(2), conv2d(16, 3, padding=same), relu, maxpool(2), flatten, "
           "linear(10)")


def test_a_text_model_gives_each_layer_its_input_from_the_one_before() -> None:
    layers = parse_layers(DEFAULT, (1, 8, 8))
    assert layers[0] == Input((1, 8, 8))
    assert layers[1] == Conv2d(1, 6, 3, padding="same") and layers[4] == Conv2d(6, 16, 3, padding="same")
    assert layers[3] == MaxPool2d(2) and isinstance(layers[7], Flatten) and layers[8] == Linear(64, 10)
    assert output_shape(tuple(layers)) == (10,)
    strided = parse_layers("conv2d(4, (2, 3), stride=2, padding=valid, dilation=(1, 2), bias=False), flatten, "
                           "linear(3)", (2, 9, 9))
    assert strided[1] == Conv2d(2, 4, (2, 3), stride=2, padding="valid", dilation=(1, 2), bias=False)
    assert output_shape(tuple(strided)) == (3,)


@pytest.mark.parametrize("text,message", [
    ("conv2d(8, 3), relu, maxpool(2), maxpool(5)", "layer 4 maxpool(5): kernel 5×5 is larger than its 3×3 input"),
    ("linear(10)", "layer 1 linear(10): linear takes inputs of shape (features,); it follows an output of shape "
                   "(1, 8, 8): put flatten before it"),
    ("conv2d(8, 3), flatten, linear(0)", "layer 3 linear(0): Linear out_features must be a positive integer; "
                                         "received: 0"),
    ("conv2d(8, 3, padding=sane)", "layer 1 conv2d(8, 3, padding=sane): conv2d padding must be a number, 2 numbers, "
                                   "'same' or 'valid'; received: 'sane'"),
    ("conv2d(8, 3, groups=3)", "layer 1 conv2d(8, 3, groups=3): conv2d in_channels=1 must be a multiple of groups=3"),
    ("conv2d(8, 3), pool(2)", "layer 2 pool(2): unknown layer; the layers are: linear, conv1d, conv2d, maxpool,"),
    ("conv2d(8, 3, size=2)", "layer 1 conv2d(8, 3, size=2): got an unexpected keyword argument 'size'; write it as "
                             "conv2d(OUT, KERNEL"),
    ("conv2d(8, __import__('os'))", "is not a number, a word or a tuple of integers"),
    ("conv2d(8, 3", "layers: a '(' without its ')'"),
    ("maxpool(3, padding=2)", "layer 1 maxpool(3, padding=2): maxpool padding must be at most half the kernel size"),
    ("relu(2)", "layer 1 relu(2): the activation relu takes no options"),
    ("conv2d(8, 3),, flatten", "layer 2 (empty): expected NAME or NAME(VALUE, …, OPTION=VALUE)"),
    ("flatten, linear(3), batchnorm(unbiased_running_var=True)",
     "layer 3 batchnorm(unbiased_running_var=True): write the running variance as running_var=biased or "
     "running_var=unbiased"),
])
def test_a_layer_that_does_not_fit_is_named_by_position_and_text(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_layers(text, (1, 8, 8))
    assert message in str(raised.value) and str(raised.value).startswith(("layer", "layers:")), str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_default_cnn_trains_alike_on_every_backend_in_float64(cli) -> None:
    ran = cli("--task", "cnn", "--dtype", "float64", "--epochs", "3", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["settings"]["layers"] == DEFAULT and report["settings"]["image"] == [1, 8, 8]
    pairs = {(row["backend_a"], row["backend_b"]): row for row in report["parity"]}
    assert len(pairs) == 10 and all(row["verdict"] == "within tolerance" for row in pairs.values()), pairs
    for (a, b), row in pairs.items():
        if "mxnet" not in (a, b):  # MXNet holds lr = 0.1 in float32: its named allowance, 7.9e-9 measured
            assert row["max_abs_param_diff"] < 1e-12, (a, b, row)
            assert row["max_abs_step_loss_diff"] < 1e-12, (a, b, row)
        else:
            assert row["tolerance"] == "float64 + mxnet-float32-hyperparameters", row
    accuracy = {row["backend"]: row["val_accuracy"] for row in report["summary"]}
    assert min(accuracy.values()) > 0.85, accuracy  # LeNet on 8×8 digits, 3 epochs: 0.897


def test_an_npz_of_images_is_read_and_a_wrong_one_refused(cli, tmp_path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    images = rng.normal(size=(40, 2, 6, 6)) + labels[:, None, None, None]  # class 1 is brighter
    np.savez(tmp_path / "images.npz", X=images, y=labels)
    ran = cli("--task", "cnn", "--data", str(tmp_path / "images.npz"), "--layers",
              "conv2d(3, 3), relu, avgpool(2), flatten, linear(2)", "--backends", "numpy,torch", "--epochs", "2",
              "--format", "json")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["settings"]["image"] == [2, 6, 6]
    default = cli("--task", "cnn", "--data", str(tmp_path / "images.npz"), "--backends", "numpy", "--epochs", "1",
                  "--format", "json")  # the default model ends with one logit per class of the data
    assert default.code == 0 and json.loads(default.out)["settings"]["layers"].endswith("flatten, linear(2)")
    np.savez(tmp_path / "flat.npz", X=images.reshape(40, -1), y=labels)
    flat = cli("--task", "cnn", "--data", str(tmp_path / "flat.npz"))
    assert flat.code == 2 and flat.err.count("\n") == 1 and "X must be images (n, channels, height, width)" in flat.err
    images[3, 1, 2, 4] = np.nan
    np.savez(tmp_path / "nan.npz", X=images, y=labels)
    nan = cli("--task", "cnn", "--data", str(tmp_path / "nan.npz"))
    assert nan.code == 2 and nan.err.endswith("nan.npz' X[3, 1, 2, 4]: nan is not finite\n"), nan.err
    np.savez(tmp_path / "one.npz", X=images[4:20], y=labels[4:20])
    one = cli("--task", "cnn", "--data", str(tmp_path / "one.npz"), "--layers", "flatten, linear(2)")
    assert one.code == 2 and one.err.endswith("classification needs at least 2 classes; the data's y holds one: "
                                              "'0'\n"), one.err
    wrong_end = cli("--task", "cnn", "--data", str(tmp_path / "images.npz"), "--layers", "flatten, linear(3)")
    assert wrong_end.code == 2 and wrong_end.err.endswith(
        "the last layer (linear(72, 3)) gives outputs of shape (3,); the data have 2 classes: end the layers with "
        "linear(2)\n"), wrong_end.err


def test_bad_layers_on_the_command_line_are_one_line_and_exit_2(cli) -> None:
    ran = cli("--task", "cnn", "--layers", "conv2d(8, 3), relu, maxpool(2), maxpool(5), flatten, linear(10)")
    assert ran.code == 2 and ran.err == ("compare.py: error: layer 4 maxpool(5): kernel 5×5 is larger than its 3×3 "
                                         "input\n"), ran.err
    keras = cli("--task", "cnn", "--layers", "conv2d(4, 3), maxpool(3, padding=1), flatten, linear(10)",
                "--backends", "numpy,tensorflow")
    assert keras.code == 2 and "keras.layers.MaxPooling2D and AveragePooling2D pad only as 'same'" in keras.err
    both = cli("--task", "classifier", "--layers", "linear(8), relu, linear(10)", "--hidden", "8")
    assert both.code == 2 and both.err.endswith(
        "--hidden applies only to an MLP (--task mlp, or --model mlp) or the recurrent layers of --task sequence and "
        "tokens, without --layers; this run gives --layers\n")


def test_the_memory_check_counts_convolution_outputs_and_names_the_widest_layer() -> None:
    spec = get_task("cnn").spec_for(layers="conv2d(4096, 3, padding=same), relu, flatten, linear(10)")
    parts = {part.what: part for part in memory.estimate(
        rows=1797, features=64, spec=spec, dtype="float32", epochs=1, batch_size=32, val_fraction=0.2,
        backends=["numpy"], optimizer="sgd", seeds=1, record=False, row_option="--data", feature_option="--data",
        from_file=False)}
    activations = parts["the layer activations"]
    assert activations.bytes >= 1438 * 4096 * 64 * 4  # every training row's conv output, float32
    # its output, 4096 channels × 8×8, and the NumPy convolution's unrolled windows, 8×8 positions × 1 × 3×3
    assert activations.option == "--layers (layer 1 conv2d(1, 4096, 3, padding=same): 262,720 values per row)"


@pytest.mark.parametrize("name", ["numpy", "torch", "mxnet", "jax", "tensorflow"])
def test_native_init_draws_each_frameworks_own_convolution_defaults(name: str) -> None:
    backend = get_backend(name)([Input((3, 8, 8)), Conv2d(3, 64, 3), Flatten(), Linear(64 * 36, 2)], dtype="float64")
    backend.native_init(0)
    weight, bias = backend.get_params()["1.weight"], backend.get_params()["1.bias"]
    fan_in, fan_out = 3 * 9, 64 * 9
    expected = {  # the standard deviation each framework's default gives the kernel
        "numpy": 1 / np.sqrt(3 * fan_in),  # U(±1/√fan_in)
        "torch": 1 / np.sqrt(3 * fan_in),  # kaiming_uniform(a=√5): U(±1/√fan_in)
        "mxnet": 0.07 / np.sqrt(3),  # Uniform(±0.07)
        "jax": 1 / np.sqrt(fan_in),  # lecun_normal: truncated normal of variance 1/fan_in
        "tensorflow": np.sqrt(2 / (fan_in + fan_out)),  # glorot_uniform
    }[name]
    assert abs(weight.std() / expected - 1) < 0.1, (weight.std(), expected)
    assert (bias == 0).all() == (name in ("mxnet", "jax", "tensorflow"))


def test_native_mode_says_each_layer_types_own_default(cli) -> None:
    ran = cli("--task", "cnn", "--epochs", "1", "--init", "native", "--backends", "torch,jax", "--format", "json")
    assert ran.code == 0, ran.err
    said = {row["backend"]: row["initialisation and batches"] for row in json.loads(ran.out)["init"]}
    assert "nn.Conv reset_parameters: kaiming_uniform(a=√5) kernels" in said["torch"]
    assert "; nnx.Conv defaults: lecun_normal kernels, zero biases; " in said["jax"]
    assert said["jax"].endswith("; its sgd defaults, not used here: learning_rate required")  # optax's own


def test_models_from_python_are_checked_against_the_data_and_end_flat() -> None:
    with pytest.raises(ValueError, match=r"^the layers take examples of shape \(1, 4, 4\); the data's are "
                                         r"\(1, 8, 8\)$"):
        get_task("cnn").make_problem(layers=[Input((1, 4, 4)), Conv2d(1, 2, 3), Flatten(), Linear(8, 10)])
    with pytest.raises(ValueError, match=r"^layers must be a text such as"):
        get_task("mlp").make_problem(layers=5)
    with pytest.raises(ValueError, match=r"^a model's output must be one row of values per example; its last layer "
                                         r"conv2d\(1, 2, 3\) gives shape \(2, 2, 2\): end with flatten"):
        get_backend("numpy")([Input((1, 4, 4)), Conv2d(1, 2, 3)])


def test_the_memory_check_reads_the_layers_of_every_task_that_takes_them() -> None:
    mlp = get_task("mlp").spec_for(layers="linear(4000), relu, linear(1)", inputs=3)
    assert mlp is not None and mlp[1] == Linear(3, 4000)
    assert get_task("mlp").spec_for(inputs=3) is None  # the MLP of --hidden: the check builds it
    classifier = get_task("classifier").spec_for(layers="linear(8), relu, linear(3)", dataset="iris")
    assert classifier is not None and classifier[1] == Linear(4, 8)


def test_a_sweep_holds_a_gelu_model_to_the_gelu_allowances() -> None:
    from backend_compare.comparison.sweep import layer_labels, pair_tolerance

    row = {"backend": "tensorflow", "dtype": "float64", "layers": "conv2d(4, 3), gelu, flatten, linear(10)"}
    assert "gelu" in layer_labels(row)
    assert pair_tolerance(row, "numpy", "float64", "sgd")["rtol"] == ALLOWANCES["tensorflow-gelu-float32-constant"].rtol
    assert pair_tolerance({**row, "layers": "conv2d(4, 3), relu, flatten, linear(10)"}, "numpy", "float64",
                          "sgd")["rtol"] == 1e-9


def test_a_residual_block_is_written_as_add_and_crosses_the_worker_protocol() -> None:
    from backend_compare.layers import Activation, Residual, decode_spec, encode_spec, make_spec, param_shapes

    layers = parse_layers("conv2d(4, 3, padding=same), add(conv2d(4, 3, padding=same), relu), flatten, linear(10)",
                          (1, 8, 8))
    assert layers[2] == Residual((Conv2d(4, 4, 3, padding="same"), Activation("relu")))
    spec = make_spec(layers)
    assert decode_spec(encode_spec(spec)) == spec
    assert {"2.0.weight", "2.0.bias"} <= set(param_shapes(spec))  # the block's index, then its branch layer's
    with pytest.raises(ValueError, match=r"^layer 2 add\(conv2d\(5, 3, padding=same\)\): its branch gives shape "
                                         r"\(5, 6, 6\) for an input of shape \(4, 6, 6\); x \+ f\(x\) needs the same$"):
        parse_layers("conv2d(4, 3), add(conv2d(5, 3, padding=same))", (1, 8, 8))


@pytest.mark.parametrize("name", ["torch", "tensorflow"])
def test_native_init_reaches_the_layers_inside_a_residual_block(name: str) -> None:
    from backend_compare.layers import Activation, Residual

    spec = [Input((2, 4, 4)), Residual((Conv2d(2, 2, 3, padding="same"), Activation("relu"))), Flatten(),
            Linear(32, 1)]
    backend = get_backend(name)(spec, dtype="float64")
    backend.set_params({key: np.zeros_like(value) for key, value in backend.get_params().items()})
    backend.native_init(1)
    assert np.abs(backend.get_params()["1.0.weight"]).max() > 0  # drawn again by the framework's own default


CEIL_SIZES = [(5, 2, 2, 0), (5, 3, 2, 0), (6, 3, 2, 1), (5, 2, 2, 1), (4, 3, 2, 1), (8, 3, 2, 1), (5, 3, 3, 1),
              (6, 2, 2, 0), (7, 3, 3, 1)]  # (size, kernel, stride, padding)


@pytest.mark.parametrize("name", ["torch", "mxnet", "jax", "tensorflow"])
def test_ceil_mode_pools_as_torch_does_or_is_refused_by_name(name: str) -> None:
    rng = np.random.default_rng(0)
    refusals = set()
    for size, kernel, stride, padding in CEIL_SIZES:
        for pool in (MaxPool2d(kernel, stride=stride, padding=padding, ceil_mode=True),
                     AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=True),
                     AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=True, count_include_pad=False)):
            spec = [Input((1, size, size)), pool, Flatten()]
            spec.append(Linear(int(np.prod(output_shape(tuple(spec)))), 1))
            X = rng.normal(size=(2, 1, size, size))
            expected = get_backend("numpy")(spec, dtype="float64")
            try:
                model = get_backend(name)(spec, dtype="float64")
            except ValueError as err:
                refusals.add(str(err).split("; ", 1)[1])
                continue
            model.set_params(expected.get_params())
            np.testing.assert_allclose(model.forward_activations(X)[1], expected.forward_activations(X)[1],
                                       rtol=1e-13, atol=1e-15, err_msg=f"{name}: {pool.describe()} on {size}×{size}")
    reasons = {"torch": set(), "mxnet": {"Gluon's ceil_mode keeps a last window that starts in the padding, giving "
                                         "4×4 outputs where torch gives 3×3 (src/operator/nn/pooling.cc): give other "
                                         "sizes, or ceil_mode=False",
                                         "Gluon's ceil_mode keeps a last window that starts in the padding, giving "
                                         "3×3 outputs where torch gives 2×2 (src/operator/nn/pooling.cc): give other "
                                         "sizes, or ceil_mode=False"},
               "jax": {"nnx.avg_pool with count_include_pad=True divides by the whole window, the ceil_mode overhang "
                       "too, where torch counts only the padded input: give count_include_pad=False or other sizes"},
               "tensorflow": {"keras.layers.MaxPooling2D and AveragePooling2D pad only as 'same', not by a number: "
                              "give padding=0",
                              "keras.layers.MaxPooling2D and AveragePooling2D have no ceil_mode: give "
                              "ceil_mode=False"}}
    assert refusals == reasons[name]
    assert parse_layers("maxpool(2, ceil_mode=True), flatten, linear(2)", (1, 5, 5))[1] == MaxPool2d(2, ceil_mode=True)
    assert MaxPool2d(2, ceil_mode=True).output_shape((1, 5, 5)) == (1, 3, 3)  # ⌈3/2⌉ + 1
    assert MaxPool2d(2, padding=1, ceil_mode=True).output_shape((1, 5, 5)) == (1, 3, 3)  # a 4th: in the padding


def test_batchnorm_inside_a_residual_block_keeps_its_statistics_and_explain_reads_them() -> None:
    from backend_compare.comparison.explain import Explainer
    from backend_compare.layers import decode_spec, encode_spec, make_spec, state_shapes

    layers = "conv2d(2, 3, padding=same), add(conv2d(2, 3, padding=same, bias=False), batchnorm, relu), flatten, " \
             "linear(10)"
    spec = make_spec(parse_layers(layers, (1, 8, 8)))
    assert set(state_shapes(spec)) == {"2.1.running_mean", "2.1.running_var"} and spec[2].smallest_batch == 2
    assert decode_spec(encode_spec(spec)) == spec
    problem = get_task("cnn").make_problem(seed=0, epochs=1, layers=layers)
    options = {"dtype": "float64", "lr": 0.1, "loss": "cross-entropy"}
    backends = {name: get_backend(name)(problem.spec, **options) for name in ("numpy", "mxnet")}
    (finding,) = Explainer(problem, backends, options).run()
    assert finding.cause.endswith(
        "mxnet keeps 0.899999976 of the old value where numpy keeps 0.9: the momentum held in float32 (0.9 rounded "
        "to 32 bits)"), finding.cause
