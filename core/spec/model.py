"""The ``model:`` block: the input shape and the layers, in Keras' vocabulary, channels last.

Every layer's shapes are worked out here, as the file is read, so that a shape
mistake is a placed error (file:line:col, key path, what would fit) and the
engine never meets a network that cannot run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..maths import activations, initializers
from ..maths.regularizers import DEFAULT_FACTOR, NAMES, Regularizer
from ..maths.windows import PADDINGS, output_length
from ..safetext import quote
from .reader import Reader
from .types import LAYER_KINDS, InitSpec, LayerSpec

# Beyond this a typo (units: 100000000) would end in an out-of-memory traceback
# when the weights are drawn; 10⁸ float64 numbers are 800 MB before Adam's slots.
MAX_PARAMS = 100_000_000
# One sample's activations in a layer: a 4096×4096×64 image would be 8 GB a sample.
MAX_ACTIVATIONS = 50_000_000

COMMON = ("name", "type")
KERNEL_KEYS = (
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "kernel",
    "bias",
)
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "dense": (*COMMON, "units", *KERNEL_KEYS),
    "conv2d": (*COMMON, "filters", "kernel_size", "strides", "padding", *KERNEL_KEYS),
    "max_pooling2d": (*COMMON, "pool_size", "strides", "padding"),
    "average_pooling2d": (*COMMON, "pool_size", "strides", "padding"),
    "flatten": COMMON,
    "dropout": (*COMMON, "rate"),
    "batch_normalization": (*COMMON, "momentum", "epsilon", "gamma", "beta"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "dense": ("units",),
    "conv2d": ("filters", "kernel_size"),
    "dropout": ("rate",),
}
IMAGE_KINDS = ("conv2d", "max_pooling2d", "average_pooling2d")


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _initializer(r: Reader, value: object, path: str, default: str) -> InitSpec:
    if value is None:
        return InitSpec(default)
    if isinstance(value, str):
        return InitSpec(r.choice(value, path, initializers.NAMES))
    spec = r.mapping(
        value, path, ("name", "mean", "stddev", "minval", "maxval", "value"), ("name",)
    )
    name = r.choice(spec["name"], f"{path}.name", initializers.NAMES)
    options: dict[str, float] = {}
    for key, raw in spec.items():
        if key == "name":
            continue
        if key not in initializers.OPTIONS.get(name, set()):
            raise r.fail(f"{path}.{key}", f"the initializer {name} takes no option '{key}'")
        options[key] = r.number(raw, f"{path}.{key}")
    return InitSpec(name, options)


def _regularizer(r: Reader, value: object, path: str) -> Regularizer | None:
    """Keras' forms: ``l2`` or ``l1`` (factor 0.01), ``{l2: λ}``, ``{l1: λ}``, ``{l1: λ, l2: μ}``."""
    if value is None:
        return None
    hint = "use l2, l1, {l2: 0.01}, {l1: 0.001} or {l1: 0.001, l2: 0.01}"
    if isinstance(value, str):
        name = r.choice(value, path, NAMES)
        return Regularizer(**{name: DEFAULT_FACTOR})
    if not isinstance(value, dict):
        raise r.fail(path, f"expected a regularizer, got {quote(value)}; {hint}")
    spec = r.mapping(value, path, NAMES, what=f"a regularizer ({hint})")
    if not spec:
        raise r.fail(path, f"the regularizer names no factor; {hint}")
    factors = {name: r.number(spec[name], f"{path}.{name}", low=0.0) for name in spec}
    if not any(factors.values()):
        return None  # every factor 0: no penalty, as in Keras
    return Regularizer(**factors)


def _pair(r: Reader, value: object, path: str) -> tuple[int, int]:
    """A size or stride: one whole number for both axes, or [height, width]."""
    if isinstance(value, list):
        if len(value) != 2:
            raise r.fail(
                path, f"expected one whole number or a pair [height, width], got {quote(value)}"
            )
        return (
            r.integer(value[0], f"{path}[0]", minimum=1),
            r.integer(value[1], f"{path}[1]", minimum=1),
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise r.fail(
            path, f"expected one whole number or a pair [height, width], got {quote(value)}"
        )
    n = r.integer(value, path, minimum=1)
    return (n, n)


def input_shape(r: Reader, model: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    """(inputs, one sample's shape) from ``inputs: N`` or ``input_shape: [H, W, C]``."""
    if ("inputs" in model) == ("input_shape" in model):
        raise r.fail(
            "model",
            "give exactly one of inputs: N (a flat input) or input_shape: [H, W, C] (images)",
        )
    if "inputs" in model:
        inputs = r.integer(model["inputs"], "model.inputs", minimum=1)
        return inputs, (inputs,)
    raw = model["input_shape"]
    path = "model.input_shape"
    if not isinstance(raw, list) or len(raw) not in (1, 3):
        raise r.fail(
            path,
            f"expected [height, width, channels] (channels last, as Keras) or [N], got {quote(raw)}",
        )
    shape = tuple(r.integer(v, f"{path}[{i}]", minimum=1) for i, v in enumerate(raw))
    if math.prod(shape) > MAX_ACTIVATIONS:
        raise r.fail(path, f"an input of {math.prod(shape):,} numbers a sample is too large")
    return math.prod(shape), shape


class _Builder:
    def __init__(self, r: Reader) -> None:
        self.r = r

    def name(self, spec: dict[str, Any], path: str, default: str, seen: set[str]) -> str:
        r = self.r
        name = r.text(spec.get("name", default), f"{path}.name")
        if not name.isidentifier():
            raise r.fail(
                f"{path}.name",
                f"{quote(name)} is not usable as a layer name; use letters, digits and _",
            )
        if name in seen:
            raise r.fail(
                f"{path}.name", f"the layer name '{name}' is used twice; names must differ"
            )
        seen.add(name)
        return name

    def activation(self, spec: dict[str, Any], path: str) -> str:
        act = spec.get("activation", "linear")
        act = activations.ALIASES.get(act, act) if isinstance(act, str) else act
        return self.r.choice(act, f"{path}.activation", tuple(activations.ACTIVATIONS))

    def bias(
        self, spec: dict[str, Any], path: str, use_bias: bool, units: int
    ) -> NDArray[np.float64] | None:
        if "bias" not in spec:
            return None
        if not use_bias:
            raise self.r.fail(f"{path}.bias", "the layer has use_bias: false; remove bias:")
        return self.r.matrix(spec["bias"], f"{path}.bias", (units,))

    def regularizers(
        self, spec: dict[str, Any], path: str, use_bias: bool
    ) -> tuple[Regularizer | None, Regularizer | None]:
        """(kernel_regularizer, bias_regularizer) of a dense or conv2d layer."""
        r = self.r
        bias = _regularizer(r, spec.get("bias_regularizer"), f"{path}.bias_regularizer")
        if bias is not None and not use_bias:
            raise r.fail(
                f"{path}.bias_regularizer",
                "the layer has use_bias: false; remove bias_regularizer:",
            )
        kernel = _regularizer(r, spec.get("kernel_regularizer"), f"{path}.kernel_regularizer")
        return kernel, bias

    def dense(
        self, spec: dict[str, Any], path: str, name: str, shape: tuple[int, ...], below: str
    ) -> LayerSpec:
        r = self.r
        if len(shape) != 1:
            raise r.fail(
                f"{path}.type",
                f"dense takes a flat input but gets {shape_text(shape)} from {below}; "
                "add {type: flatten} before it",
            )
        width = shape[0]
        units = r.integer(spec["units"], f"{path}.units", minimum=1)
        return self.kernel_layer(spec, path, name, "dense", width, units, (width, units))

    def kernel_layer(
        self,
        spec: dict[str, Any],
        path: str,
        name: str,
        kind: str,
        inputs: int,
        units: int,
        kernel_shape: tuple[int, ...],
        what: str | None = None,
        input_shape: tuple[int, ...] = (),
        output_shape: tuple[int, ...] = (),
        kernel_size: tuple[int, int] = (1, 1),
        strides: tuple[int, int] = (1, 1),
        padding: str = "valid",
    ) -> LayerSpec:
        """A dense or conv2d layer: what both read (activation, bias, initializers, an
        explicit kernel and bias, regularizers) around the shapes the kind worked out."""
        r = self.r
        use_bias = r.boolean(spec.get("use_bias", True), f"{path}.use_bias")
        kernel = None
        if "kernel" in spec:
            kernel = r.matrix(spec["kernel"], f"{path}.kernel", kernel_shape, what=what)
        kernel_penalty, bias_penalty = self.regularizers(spec, path, use_bias)
        return LayerSpec(
            name=name,
            type=kind,
            inputs=inputs,
            units=units,
            activation=self.activation(spec, path),
            use_bias=use_bias,
            kernel_initializer=_initializer(
                r, spec.get("kernel_initializer"), f"{path}.kernel_initializer", "glorot_uniform"
            ),
            bias_initializer=_initializer(
                r, spec.get("bias_initializer"), f"{path}.bias_initializer", "zeros"
            ),
            kernel=kernel,
            bias=self.bias(spec, path, use_bias, units),
            kernel_regularizer=kernel_penalty,
            bias_regularizer=bias_penalty,
            input_shape=input_shape,
            output_shape=output_shape,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
        )

    def windowed(
        self, spec: dict[str, Any], path: str, kind: str, shape: tuple[int, ...], below: str
    ) -> tuple[tuple[int, int], tuple[int, int], str, tuple[int, ...]]:
        """(size, strides, padding, output shape) of a conv2d or pooling layer."""
        r = self.r
        if len(shape) != 3:
            raise r.fail(
                f"{path}.type",
                f"{kind} takes images (height, width, channels) but gets {shape_text(shape)} "
                f"from {below}; give model.input_shape: [H, W, C] and put {kind} before flatten",
            )
        size_key = "kernel_size" if kind == "conv2d" else "pool_size"
        size = _pair(r, spec.get(size_key, 2), f"{path}.{size_key}")
        default_strides: object = 1 if kind == "conv2d" else list(size)
        strides = _pair(r, spec.get("strides", default_strides), f"{path}.strides")
        padding = r.choice(spec.get("padding", "valid"), f"{path}.padding", PADDINGS)
        out_h = output_length(shape[0], size[0], strides[0], padding)
        out_w = output_length(shape[1], size[1], strides[1], padding)
        if out_h < 1 or out_w < 1:
            what = "kernel" if kind == "conv2d" else "pooling window"
            raise r.fail(
                f"{path}.{size_key}",
                f"the {what} {size[0]}×{size[1]} is larger than its input {shape[0]}×{shape[1]} "
                f"(from {below}), so nothing is left; use a {size_key} of at most "
                f"{shape[0]}×{shape[1]} or padding: same",
            )
        return size, strides, padding, (out_h, out_w)

    def conv2d(
        self, spec: dict[str, Any], path: str, name: str, shape: tuple[int, ...], below: str
    ) -> LayerSpec:
        r = self.r
        size, strides, padding, (out_h, out_w) = self.windowed(spec, path, "conv2d", shape, below)
        filters = r.integer(spec["filters"], f"{path}.filters", minimum=1)
        return self.kernel_layer(
            spec,
            path,
            name,
            "conv2d",
            size[0] * size[1] * shape[2],
            filters,
            (size[0], size[1], shape[2], filters),
            what="kernel_h × kernel_w × in_channels × filters",
            input_shape=shape,
            output_shape=(out_h, out_w, filters),
            kernel_size=size,
            strides=strides,
            padding=padding,
        )

    def pooling(
        self,
        spec: dict[str, Any],
        path: str,
        name: str,
        kind: str,
        shape: tuple[int, ...],
        below: str,
    ) -> LayerSpec:
        size, strides, padding, (out_h, out_w) = self.windowed(spec, path, kind, shape, below)
        return self.plain(
            name,
            kind,
            shape,
            (out_h, out_w, shape[2]),
            kernel_size=size,
            strides=strides,
            padding=padding,
        )

    def plain(
        self, name: str, kind: str, shape: tuple[int, ...], out: tuple[int, ...], **extra: Any
    ) -> LayerSpec:
        return LayerSpec(
            name=name,
            type=kind,
            inputs=math.prod(shape),
            units=out[-1],
            activation="linear",
            use_bias=False,
            kernel_initializer=InitSpec("zeros"),
            bias_initializer=InitSpec("zeros"),
            input_shape=shape,
            output_shape=out,
            **extra,
        )

    def dropout(
        self, spec: dict[str, Any], path: str, name: str, shape: tuple[int, ...]
    ) -> LayerSpec:
        rate = self.r.number(spec["rate"], f"{path}.rate", low=0.0)
        if rate >= 1.0:
            raise self.r.fail(
                f"{path}.rate",
                f"expected a rate in [0, 1) (the share of inputs dropped), got {spec['rate']}",
            )
        return self.plain(name, "dropout", shape, shape, rate=rate)

    def batch_norm(
        self, spec: dict[str, Any], path: str, name: str, shape: tuple[int, ...]
    ) -> LayerSpec:
        r = self.r
        momentum = r.number(spec.get("momentum", 0.99), f"{path}.momentum", low=0.0, high=1.0)
        epsilon = r.number(spec.get("epsilon", 1e-3), f"{path}.epsilon", low=0.0, low_open=True)
        channels = shape[-1]
        gamma = beta = None
        if "gamma" in spec:
            gamma = r.matrix(spec["gamma"], f"{path}.gamma", (channels,), what="one per channel")
        if "beta" in spec:
            beta = r.matrix(spec["beta"], f"{path}.beta", (channels,), what="one per channel")
        return self.plain(
            name,
            "batch_normalization",
            shape,
            shape,
            momentum=momentum,
            epsilon=epsilon,
            gamma=gamma,
            beta=beta,
        )


def layers(r: Reader, model: dict[str, Any], shape: tuple[int, ...]) -> tuple[LayerSpec, ...]:
    """The layers of ``model.layers``, their shapes worked out from the input's."""
    raw_layers = model["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise r.fail("model.layers", "expected a list of at least one layer")
    build = _Builder(r)
    out: list[LayerSpec] = []
    seen: set[str] = set()
    below = "the input"
    for i, raw in enumerate(raw_layers):
        path = f"model.layers[{i}]"
        if not isinstance(raw, dict):
            r.mapping(raw, path, ())  # says what a layer must be
        kind = r.choice(raw.get("type", "dense"), f"{path}.type", LAYER_KINDS)
        spec = r.mapping(raw, path, LAYER_KEYS[kind], REQUIRED.get(kind, ()))
        name = build.name(spec, path, f"{kind}_{i + 1}", seen)
        if kind == "dense":
            layer = build.dense(spec, path, name, shape, below)
        elif kind == "conv2d":
            layer = build.conv2d(spec, path, name, shape, below)
        elif kind in IMAGE_KINDS:
            layer = build.pooling(spec, path, name, kind, shape, below)
        elif kind == "flatten":
            layer = build.plain(name, kind, shape, (math.prod(shape),))
        elif kind == "dropout":
            layer = build.dropout(spec, path, name, shape)
        else:
            layer = build.batch_norm(spec, path, name, shape)
        out.append(layer)
        if sum(item.param_count for item in out) > MAX_PARAMS:
            key = "units" if kind == "dense" else "filters"
            raise r.fail(
                f"{path}.{key}",
                f"the network would have more than {MAX_PARAMS:,} parameters by this layer; "
                f"use fewer {key}",
            )
        if math.prod(layer.output_shape) > MAX_ACTIVATIONS:
            raise r.fail(
                path,
                f"this layer's output {shape_text(layer.output_shape)} is more than "
                f"{MAX_ACTIVATIONS:,} numbers a sample; use strides or pooling",
            )
        shape = layer.output_shape
        below = f"layer {name} ({kind})"
    if len(shape) != 1:
        raise r.fail(
            f"model.layers[{len(out) - 1}]",
            f"the network ends in {shape_text(shape)}, but the loss needs one vector per sample; "
            "end with {type: flatten} and a dense layer",
        )
    return tuple(out)
