"""The Backend interface: NumPy arrays in, NumPy arrays out, one framework inside."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..layers import (
    Layer,
    ModelSpec,
    Translator,
    first_layer,
    input_shape,
    input_shapes,
    layer_types,
    make_spec,
    out_features,
    output_shape,
    param_shapes,
    state_shapes,
)
from ..optimizers import support
from ..optimizers.training import training_text
from .arguments import (
    an_array,
    as_dtype,
    choice,
    finite,
    flag,
    integer,
    named_arrays,
    real_array,
    representable,
    unshared,
    weak,
)
from .batches import EpochBatches, batch_order, gathered, shuffled_epochs
from .devices import device_of
from .losses import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    checked_targets,
    class_weights_of,
    label_smoothing_of,
)
from .masks import DropoutMasks
from .numerics import NumericsRecord
from .precision import DTYPES, FULL_DTYPES, check_fits, numerics_of, numpy_dtype
from .precision import refuses as refuses_numerics
from .state import LayerState, keeps_state
from .training import training_of

MODES = ("usual", "eager", "compiled")  # usual: each framework as its own tutorials run it
GATHER_BYTES = 8 * 2**20  # rows copied into batch order at once: bounded memory, still in cache when used

Params = dict[str, np.ndarray]


class Backend(LayerState, DropoutMasks, NumericsRecord, ABC):
    """Trains a model from a framework-neutral spec with one framework's own machinery.

    Hyper-parameters are keyword arguments. Parameters, gradients, data and predictions cross
    the boundary as NumPy arrays in the canonical layout of `backends.spec.param_shapes`.
    Every loss is the task's definition, averaged over the batch (backends/losses.py). A low `dtype` or `precision`
    (backends/precision.py) changes what the framework computes in; arrays cross as float32, which holds them exactly.
    A new model holds its framework's default initial parameters (see `native_init`).
    `mode` is how the training step runs: "eager" (op by op), "compiled" (traced or compiled by the
    framework's compiler) or "usual" (the backend's `usual_mode`); `self.mode` holds the one chosen.
    """

    name: ClassVar[str]
    native_init_description: ClassVar[str]  # what native_init draws, for reports
    modes: ClassVar[tuple[str, ...]] = ("eager",)  # the modes this backend can run its step in
    usual_mode: ClassVar[str] = "eager"  # what its framework's tutorials do
    load_copies: ClassVar[bool] = False  # True when _load converts into memory of the framework's own
    runs: ClassVar[tuple[str, ...]] = FULL_DTYPES  # its numerics (precision.NUMERICS): a dtype or a mixed precision
    framework: ClassVar[str] = ""  # whose translators build its layers (a layer's `translators` key); "" for none
    translators: ClassVar[Mapping[str, type[Translator]]] = {}  # layer kind → this backend's own translator
    replay: ClassVar[bool] = False  # whether it has the replay hooks explain needs (_activations, _optimizer_state,
    # _set_optimizer_state)

    @classmethod
    def translates(cls, layer: Layer | type[Layer]) -> bool:
        """Whether this backend can build `layer` (or layers of its type): a translator of its own, or the
        layer type's for its framework."""
        return (layer.kind in cls.translators or cls.framework in layer.translators) and (
            cls.keeps_state or not keeps_state(layer))

    @classmethod
    def layer_kinds(cls) -> tuple[str, ...]:
        """The registered layer types this backend builds."""
        return tuple(kind for kind, layer in layer_types().items() if cls.translates(layer))

    @classmethod
    def cannot_build(cls, layer: Layer, shape: tuple[int, ...] | None = None) -> str | None:
        """Why this backend cannot build `layer` (a layer type it has no translator for, or options its
        framework's layer cannot take, for inputs of one example's `shape` where given), or None."""
        if not cls.translates(layer):
            return f"it builds: {', '.join(cls.layer_kinds()) or 'no layer type'}"
        found = cls.translators.get(layer.kind) or layer.translators.get(cls.framework)
        if found is None:  # layers built its own way (NumPy)
            return None
        return found().refuses(layer) or (found().refuses_input(layer, shape) if shape is not None else None)

    def native_init_text(self) -> str:
        """What native_init draws for this model: the backend's description, then each other layer type's own
        default where its translator says one."""
        parts = [self.native_init_description]
        for layer in self.spec:
            if (layer.params() or layer.takes_mask) and (layer.kind in self.translators
                                                          or self.framework in layer.translators):
                text = self.translator(layer).native_default
                if text and text not in parts:
                    parts.append(text)
        defaults = support.native_defaults(self.framework, self.optimizer)  # torch's constants are what trains
        return "; ".join([*parts, defaults] if defaults else parts)

    @classmethod
    def translator(cls, layer: Layer) -> Translator:
        """The translator that builds `layer` in this backend's framework."""
        own = cls.translators.get(layer.kind)
        return own() if own is not None else layer.translator(cls.framework)

    def __init__(
        self,
        spec: ModelSpec | Sequence[Any],
        *,
        dtype: str = "float32",
        optimizer: str = "sgd",
        lr: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        loss: str = "mse",
        huber_delta: float = 1.0,
        mode: str = "usual",
        schedule: str | None = None,
        clip: str | None = None,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        precision: str | None = None,
        device: str = "cpu",
        deterministic: bool = False,
    ) -> None:
        self.spec = make_spec(list(spec))
        self._input_shape = input_shape(self.spec)  # checked against every X: found once
        self._first = first_layer(self.spec)  # which checks X's values (token ids)
        out = output_shape(self.spec)
        if len(out) != 1:
            raise ValueError(f"a model's output must be one row of values per example; its last layer "
                             f"{self.spec[-1].describe()} gives shape {out}: end with flatten and a linear layer")
        for index, (layer, shape) in enumerate(zip(self.spec, input_shapes(self.spec), strict=True)):
            reason = self.cannot_build(layer, shape)
            if reason is not None:
                raise ValueError(f"the {self.name} backend cannot build layer {index} {layer.describe()}; {reason}")
        self.options_ = {"dtype": dtype, "optimizer": optimizer, "lr": lr, "momentum": momentum,
                         "weight_decay": weight_decay, "loss": loss, "huber_delta": huber_delta, "mode": mode,
                         "schedule": schedule, "clip": clip, "label_smoothing": label_smoothing,
                         "class_weights": class_weights, "precision": precision,
                         "device": device, "deterministic": deterministic}
        self.last_fit_: dict[str, Any] | None = None  # what the last fit() trained on, for replaying it
        self.mode = self.usual_mode if choice("mode", mode, MODES) == "usual" else mode
        if self.mode not in self.modes:
            raise ValueError(f"mode must be one of usual, {', '.join(self.modes)} for the {self.name} backend; "
                             f"received: {mode!r}")
        # dtype: what arrays go in and out as (float32 for bfloat16 and float16, which it holds exactly)
        self.numerics = numerics_of(choice("dtype", dtype, DTYPES), precision)
        self.dtype = self.numerics.arrays
        self.device, self.deterministic = device_of(self.framework or self.name, device), flag("deterministic",
                                                                                                deterministic)
        self.training = training_of(optimizer, lr, momentum, weight_decay, schedule, clip)
        self.optimizer, self.lr, self.momentum, self.weight_decay = (
            self.training.optimizer, self.training.lr, self.training.momentum, self.training.weight_decay)
        self.options_.update(lr=self.lr, weight_decay=self.weight_decay)  # the defaults, as they were resolved
        self.loss_name = choice("loss", loss, LOSSES)
        self.huber_delta = finite("huber_delta", huber_delta, zero_allowed=False)
        self.label_smoothing = label_smoothing_of(label_smoothing, self.loss_name)
        self.class_weights = class_weights_of(class_weights, self.loss_name, out_features(self.spec),
                                              self.label_smoothing, self.dtype)
        for name in ("lr", "momentum", "weight_decay", "huber_delta"):
            representable(name, getattr(self, name), numpy_dtype(self.numerics.params))
        if self.training.clip is not None:  # a limit the dtype holds as 0 would clip every gradient to nothing
            representable("clip", self.training.clip.limit, numpy_dtype(self.numerics.params))
        refused = refuses_numerics(self.framework, self.numerics, self.training.optimizer, self.runs, self.spec,
                                   out_features(self.spec) if self.classifies else None)
        if refused is not None:
            raise ValueError(f"the {self.name} backend cannot run {self.numerics.name}; {refused}")
        refused = support.refuses(self.framework, self.training, self.dtype)
        if refused is not None:
            raise ValueError(f"the {self.name} backend cannot train with {training_text(self.training)}; {refused}")
        if self.classifies and out_features(self.spec) < 2:
            raise ValueError(f"loss cross-entropy needs a model with one output per class, at least 2; "
                             f"received a model with {out_features(self.spec)} output")
        self._shapes = param_shapes(self.spec)
        self._state_shapes = state_shapes(self.spec)
        self._n_train = 0
        self.loss_history_ = np.empty(0)  # fit()'s step losses since the parameters were last set
        self._restart_record()
        self._updates = 0  # optimiser steps since the state was last set: the canonical state's step count
        self._start_masks()
        self._build()
        self._reset_optimizer()

    @property
    def classifies(self) -> bool:
        """Whether the loss takes class indices (cross-entropy) rather than targets of the output's shape."""
        return self.loss_name in CLASSIFICATION_LOSSES

    # ---- public API: checks and conversions, then the framework hooks below ----

    def fit(self, X: np.ndarray, y: np.ndarray, *, epochs: int = 1, batch_size: int = 32, shuffle: bool = True,
            seed: int = 0) -> Backend:
        """Train on (X, y), minibatches drawn by numpy.random.default_rng(seed); returns self.

        fit continues: it starts from the current parameters and optimiser state, and appends its
        step losses to `loss_history_`. set_params and native_init start both afresh.
        """
        epochs, batch_size = integer("epochs", epochs), integer("batch_size", batch_size)
        flag("shuffle", shuffle)
        self.load(X, y)
        fresh = not len(self.loss_history_) and self._updates == 0
        # The caller's arrays by weak reference: remembering a fit must not keep a data set alive.
        self.last_fit_ = {"X": weak(X), "y": weak(y), "epochs": epochs, "batch_size": batch_size,
                          "shuffle": shuffle, "seed": seed, "start": self.get_params() if fresh else None}
        rng = np.random.default_rng(integer("seed", seed, minimum=0))
        history = [self.loss_history_]
        for batches in shuffled_epochs(rng, self._n_train, batch_size, epochs, shuffle):
            history.append(self.train_epoch(batches))
        self.loss_history_ = np.concatenate(history)
        return self

    @property
    def params_(self) -> Params:
        """The current parameters (same as get_params())."""
        return self.get_params()

    def get_params(self) -> Params:
        """Current parameters, canonical names and layout, as NumPy arrays of the backend's dtype."""
        return {name: np.array(value, dtype=self.dtype) for name, value in self._get_params().items()}

    def set_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Load parameters given in the canonical layout (any float dtype; cast to the backend's)."""
        self._set_params(named_arrays("params", params, self._shapes, self.dtype))
        self._restart_training()
        self._shared_masks()

    def native_init(self, seed: int) -> None:
        """Re-draw the parameters with the framework's own default initialiser, seeded by `seed`; like
        set_params, this starts the optimiser afresh. Dropout masks then come from the framework's own dropout
        and random state, seeded by `seed` (set_params: the shared masks again)."""
        seed = integer("seed", seed, minimum=0)
        self._native_init(seed)
        self._restart_training()
        self._native_masks(seed)

    def _restart_training(self) -> None:
        """New parameters: the optimiser state (momentum, Adam's moments and step count) and the loss
        history start again, so training from the same parameters twice gives the same numbers."""
        self._reset_optimizer()
        self._restart_state()
        self._updates = self._mask_step = 0
        self.loss_history_ = np.empty(0)
        self._scales = []

    def native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                       shuffle: bool = True) -> EpochBatches:
        """Per epoch, the row indices of each batch, as the framework's own data loader orders them
        (made one epoch at a time, when asked for)."""
        n_rows, batch_size = integer("n_rows", n_rows), min(integer("batch_size", batch_size), n_rows)
        epochs, seed = integer("epochs", epochs), integer("seed", seed, minimum=0)

        def epochs_from_the_start() -> Iterator[list[np.ndarray]]:
            for epoch in self._native_batches(n_rows, batch_size, epochs, seed, shuffle):
                yield [np.asarray(batch, dtype=np.int64) for batch in epoch]

        return EpochBatches(epochs_from_the_start, epochs, n_rows, batch_size)

    def load(self, X: np.ndarray, y: np.ndarray, *, copy: bool = True) -> None:
        """Convert the training set to framework arrays once; `step` and `train_epoch` index into it.

        The backend keeps a copy, so changing X or y afterwards does not change what it trains on.
        copy=False is for a caller that will not change them: backends that can use NumPy memory as
        it is (numpy, torch) then keep a reference instead of a second copy of the data.
        """
        X_checked, y_checked = self._check_xy(X, y)
        if copy and not self.load_copies:  # what trains must not be the caller's memory
            X_checked, y_checked = unshared(X_checked, X), unshared(y_checked, y)
        X, y = X_checked, y_checked
        self._n_train = len(X)
        row_bytes = (math.prod(X.shape[1:]) + math.prod(y.shape[1:])) * X.itemsize
        self._rows_per_gather = max(1, GATHER_BYTES // row_bytes)
        self._load(X, y)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Model output for a NumPy batch, shape (batch, out_features)."""
        return np.asarray(self._predict(self._check_x(X)), dtype=self.dtype)

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """The task's loss on (X, y), computed by the framework's loss object."""
        return float(self._loss(*self._check_xy(X, y)))

    def training_loss(self) -> float:
        """The loss on the loaded training set, using the arrays `load` made (no second conversion)."""
        if not self._n_train:
            raise ValueError("training_loss needs the training set: call load(X, y) or fit(X, y) first")
        return float(self._loss_loaded())

    def weight_penalty(self) -> float:
        """½·Σ wd·‖p‖² over the parameters the optimiser decays, computed by the framework: the term whose
        gradient, wd·p, the optimiser adds to each one's (coupled L2), so the loss plus this is the objective
        training minimises. 0.0 without weight decay or with a decoupled one (adamw, whose decay is no gradient's);
        NotImplementedError for a backend without the hook."""
        if not self.training.coupled_decay:
            return 0.0
        return float(self._hook("_penalty")())

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        """The loss on (X, y) and its gradient for every parameter (no weight decay), via backward; in
        training mode (batch statistics), the layers' state left as it was."""
        state = self.get_state()
        loss, grads = self._loss_and_grads(*self._check_xy(X, y))
        if state:
            self.set_state(state)
        return float(loss), {name: np.array(grads[name], dtype=self.dtype) for name in self._shapes}

    def step(self, batch: np.ndarray) -> float:
        """One optimiser step on the loaded rows `batch`; returns the batch loss before the step."""
        return float(self.train_epoch([batch])[0])

    def train_epoch(self, batches: Sequence[np.ndarray]) -> np.ndarray:
        """One optimiser step per index array, in order; returns each step's loss before its update."""
        if not self._n_train:
            raise ValueError("step and train_epoch need the training set: call load(X, y) or fit(X, y) first")
        if not len(batches):
            return np.empty(0)
        order, bounds = batch_order(batches, self._n_train)
        steps = self.training.schedule.steps
        if steps is not None and self._updates + len(batches) > steps:
            raise ValueError(f"the schedule {self.training.schedule.text()} ends after {steps} updates; training "
                             f"would make update {self._updates + len(batches)}: give steps= the run's length")
        self._mask_step = self._updates  # the masks of each step follow its number: counted as it runs
        self._updates += len(batches)
        try:
            return np.concatenate([np.asarray(self._train(rows, chunk), dtype=np.float64)
                                   for rows, chunk in gathered(order, bounds, self._rows_per_gather)])
        finally:
            self._mask_step = self._updates

    # ---- what `compare.py explain` replays a step with ----

    def forward_activations(self, X: np.ndarray) -> list[np.ndarray]:
        """The output of every layer of the spec, in order, for a NumPy batch (the last is the prediction), as a
        training step computes them (batch statistics); the layers' state is left as it was."""
        state, self._computed_in = self.get_state(), []
        found = self._hook("_activations")(self._check_x(X))
        if not self._computed_in:  # the outputs' own dtypes, where the hook did not record them before converting
            self._computed_in = [np.asarray(value).dtype.name for value in found]
        if state:  # a framework's layers in training mode update their running statistics as they go
            self.set_state(state)
        return [np.asarray(value, dtype=self.dtype) for value in found]

    def get_optimizer_state(self) -> dict[str, Any]:
        """The optimiser's state in the canonical form: {"step": updates made} plus, by parameter name in
        the canonical layout, each of the optimiser's kinds (training.STATE_KINDS, torch's: "velocity", torch's
        momentum buffer, buf = μ·buf + g; "m" and "v", Adam's biased moments; "square_avg", "sum", "acc_delta")."""
        state = self._hook("_optimizer_state")()
        return {"step": self._updates, **{kind: {name: np.array(value, dtype=self.dtype)
                                                      for name, value in state[kind].items()}
                                               for kind in self._state_kinds()}}

    def set_optimizer_state(self, state: Mapping[str, Any]) -> None:
        """Continue from a state of get_optimizer_state's form (of this backend or another)."""
        kinds = self._state_kinds()
        missing = [kind for kind in kinds if set(state.get(kind, {})) != set(self._shapes)]
        if "step" not in state or missing:
            raise ValueError(f"state must hold step and {', '.join(kinds) or 'nothing else'} for every parameter; "
                             f"missing or incomplete: {['step'] if 'step' not in state else missing}")
        step = integer("state['step']", state["step"], minimum=0)
        self._hook("_set_optimizer_state")({"step": step, **{
            kind: {name: as_dtype(f"state[{kind!r}][{name!r}]", np.asarray(state[kind][name]), self.dtype)
                   for name in self._shapes} for kind in kinds}})
        self._updates = self._mask_step = step

    def _state_kinds(self) -> tuple[str, ...]:
        """What the optimiser keeps per parameter besides the step count."""
        return self.training.state_kinds()

    def update_for(self, batch: np.ndarray) -> tuple[Params, dict[str, Any]]:
        """The change one optimiser step on the loaded rows `batch` would make to each parameter, and the
        optimiser state after it (with the layers' running statistics after it as "layers", for a model that
        keeps some), without keeping either: parameters and every state are put back."""
        params, state, layers = self.get_params(), self.get_optimizer_state(), self.get_state()
        history = self.loss_history_
        self.step(batch)
        after, state_after = self.get_params(), self.get_optimizer_state()
        if layers:
            state_after["layers"] = self.get_state()
        draws = self._mask_draws  # set_params would take native masks back to the shared ones
        self.set_params(params)
        self._mask_draws = draws
        self.set_optimizer_state(state)
        if layers:
            self.set_state(layers)
        self.loss_history_ = history
        return {name: after[name] - params[name] for name in params}, state_after

    # What needs each optional hook: said when a backend of one's own lacks it
    HOOK_USERS: ClassVar[dict[str, str]] = {"_penalty": "the training objective with weight decay",
                                            "_activations": "explain's layer by layer forward",
                                            "_optimizer_state": "explain's replay of a step",
                                            "_set_optimizer_state": "explain's replay of a step"}

    def _hook(self, name: str) -> Any:
        hook = getattr(self, name, None)
        if hook is None:
            raise NotImplementedError(f"backend {self.name!r} has no {name} hook, which "
                                      f"{self.HOOK_USERS.get(name, 'explain')} needs: see the hooks in "
                                      "backends/base.py and backends/numpy_backend.py")
        return hook

    def _check_x(self, X: np.ndarray) -> np.ndarray:
        an_array("X", X)
        given = real_array("X", X)
        X = as_dtype("X", given, self.dtype)
        check_fits("X", X, self.numerics)
        shape = self._input_shape
        if X.shape[1:] != shape or X.ndim != len(shape) + 1:
            raise ValueError(f"X must have shape (n, {', '.join(map(str, shape))}); received shape {X.shape}")
        if not len(X):
            raise ValueError(f"X must have at least one row; received shape {X.shape}")
        index, first = self._first
        first.check_input(given, f"layer {index}")  # the values given: token ids before the dtype rounds them
        if first.takes_ids and not np.array_equal(X, given):
            at = tuple(int(i) for i in np.argwhere(given != X)[0])
            raise ValueError(f"X's token id {given[at]!r} at row {at[0]} cannot be held exactly in {self.dtype} "
                             f"(whole numbers up to 2**24 can in float32): use float64")
        return X

    def _check_xy(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_x(X)
        an_array("y", y)
        y = checked_targets(y, len(X), self.loss_name, out_features(self.spec), self.dtype)
        check_fits("y", y, self.numerics, squared=True)
        return X, y

    # ---- framework hooks, implemented in this order by every backend ----

    @abstractmethod
    def _build(self) -> None:
        """Create the model, the loss object and the optimiser."""

    @abstractmethod
    def _get_params(self) -> Mapping[str, Any]:
        """Parameters by canonical name, anything np.array accepts."""

    @abstractmethod
    def _set_params(self, params: Params) -> None:
        """Overwrite parameters from checked, contiguous arrays of self.dtype."""

    @abstractmethod
    def _native_init(self, seed: int) -> None:
        """Parameters from the framework's default initialiser."""

    @abstractmethod
    def _reset_optimizer(self) -> None:
        """A new optimiser: no momentum buffers, moments or step count carried over."""

    @abstractmethod
    def _native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                        shuffle: bool) -> Iterator[Sequence[Any]]:
        """Index batches per epoch from the framework's own loader, one epoch at a time, from the
        start each time it is called."""

    @abstractmethod
    def _load(self, X: np.ndarray, y: np.ndarray) -> None:
        """Keep the training set as framework arrays."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> Any:
        """Forward pass without recording gradients."""

    @abstractmethod
    def _loss(self, X: np.ndarray, y: np.ndarray) -> Any:
        """The task's loss, without recording gradients."""

    @abstractmethod
    def _loss_loaded(self) -> Any:
        """The loss on the loaded training arrays."""

    @abstractmethod
    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, Mapping[str, Any]]:
        """The loss and the gradient of the batch-mean loss by canonical name."""

    @abstractmethod
    def _train(self, order: np.ndarray | None, bounds: list[tuple[int, int]]) -> Any:
        """Optimiser steps on loaded rows order[start:stop] (None: the rows as loaded) for each bound;
        the batch losses before each update."""
