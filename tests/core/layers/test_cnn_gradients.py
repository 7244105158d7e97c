"""Every new layer's hand-written backward against central finite differences, in float64.

Two levels: each layer alone (its input gradient and its parameter gradients,
every entry, for L = Σ g · z with a random g), and whole networks through the
debugger's gradient check (dropout masks held at the step's own), including
``same`` padding, stride 2, average pooling and batch normalization in training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger
from backprop_tui.core.layers import make_layer
from backprop_tui.core.spec.types import InitSpec, LayerSpec
from cnn_cases import NETWORKS, scenario
from numpy.typing import NDArray

EPS = 1e-6
F64 = NDArray[np.float64]


def _spec(kind: str, shape: tuple[int, ...], out: tuple[int, ...], **extra: Any) -> LayerSpec:
    return LayerSpec(
        name="l",
        type=kind,
        inputs=int(np.prod(shape)),
        units=out[-1],
        activation="linear",
        use_bias=kind == "conv2d",
        kernel_initializer=InitSpec("zeros"),
        bias_initializer=InitSpec("zeros"),
        input_shape=shape,
        output_shape=out,
        **extra,
    )


LAYERS = {
    "conv_valid": _spec("conv2d", (5, 6, 2), (3, 4, 3), kernel_size=(3, 3)),
    "conv_same_stride2": _spec(
        "conv2d", (5, 6, 2), (3, 3, 3), kernel_size=(2, 3), strides=(2, 2), padding="same"
    ),
    "conv_stride_2x1": _spec("conv2d", (6, 4, 1), (2, 2, 2), kernel_size=(3, 3), strides=(2, 1)),
    "max_valid": _spec("max_pooling2d", (5, 6, 2), (2, 3, 2), kernel_size=(2, 2), strides=(2, 2)),
    "max_same_overlap": _spec(
        "max_pooling2d", (5, 5, 2), (5, 5, 2), kernel_size=(3, 3), padding="same"
    ),
    "avg_same": _spec(
        "average_pooling2d",
        (5, 6, 2),
        (3, 3, 2),
        kernel_size=(2, 2),
        strides=(2, 2),
        padding="same",
    ),
    "avg_overlap": _spec(
        "average_pooling2d", (4, 4, 1), (3, 3, 1), kernel_size=(2, 2), strides=(1, 1)
    ),
    "flatten": _spec("flatten", (3, 2, 2), (12,)),
    "bn_flat": _spec("batch_normalization", (5,), (5,), momentum=0.9),
    "bn_images": _spec("batch_normalization", (3, 3, 2), (3, 3, 2), epsilon=0.01),
}
BATCH = 3


def _params(spec: LayerSpec, rng: np.random.Generator) -> dict[str, F64]:
    params = {name: rng.normal(size=shape) for name, shape in spec.param_shapes.items()}
    params.update({name: rng.uniform(0.5, 1.5, shape) for name, shape in spec.state_shapes.items()})
    return params


def _numeric(f: Callable[[], float], array: F64) -> F64:
    out = np.empty_like(array)
    for index in np.ndindex(array.shape):
        keep = array[index]
        array[index] = keep + EPS
        up = f()
        array[index] = keep - EPS
        down = f()
        array[index] = keep
        out[index] = (up - down) / (2 * EPS)
    return out


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_alone(name: str) -> None:
    spec = LAYERS[name]
    layer = make_layer(spec)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(BATCH, *spec.input_shape))
    params = _params(spec, rng)
    g = rng.normal(size=(BATCH, *spec.output_shape))
    step = layer.forward(params, x)
    assert step.z.shape == (BATCH, *spec.output_shape)
    grads, dL_dx = layer.backward(step.cache, g)

    def loss() -> float:
        return float((layer.forward(params, x).z * g).sum())

    assert dL_dx is not None
    np.testing.assert_allclose(dL_dx, _numeric(loss, x), rtol=1e-6, atol=1e-8)
    assert set(grads) == set(spec.param_names)
    for key, grad in grads.items():
        np.testing.assert_allclose(grad, _numeric(loss, params[key]), rtol=1e-6, atol=1e-8)


def test_dropout_alone_scales_what_it_keeps_and_passes_gradients_the_same_way() -> None:
    spec = _spec("dropout", (2, 2, 1), (2, 2, 1), rate=0.5)
    layer = make_layer(spec)
    x = np.arange(8.0).reshape(2, 2, 2, 1)
    mask = np.array([0.0, 2.0] * 4).reshape(x.shape)
    step = layer.forward({}, x, training=True, mask=mask)
    np.testing.assert_array_equal(step.z, x * mask)
    _, dL_dx = layer.backward(step.cache, np.ones_like(x))
    np.testing.assert_array_equal(dL_dx, mask)
    np.testing.assert_array_equal(layer.forward({}, x, training=False).z, x)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_gradient_check_passes_on_each_network(name: str) -> None:
    dbg = Debugger(scenario(name, batch_size=6))
    dbg.step("batch")
    dbg.step("batch")  # BN's moving statistics and Adam have moved
    dbg.step("phase")  # in the input of step 3: the check uses this step's masks
    result = dbg.gradient_check()
    assert result.passed, "\n".join(result.table())
    assert result.max_error < 1e-6
    checked = {p.name for p in result.params}
    assert checked == set(dbg.scenario.param_names)


def test_the_check_would_catch_dropout_masks_that_differ_from_the_step() -> None:
    """The loss with this step's masks is the function backprop differentiated: the
    probe's analytic gradients equal the step's own."""
    dbg = Debugger(scenario("small_cnn", batch_size=6))
    dbg.step("batch")
    dbg.step("phase")
    while dbg.phase != "backward" or dbg.layer_index != 0:
        dbg.step("layer")
    result = dbg.gradient_check()
    for check in result.params:
        flat = dbg.grads[check.name].reshape(-1)
        picked = np.ravel_multi_index(tuple(check.indices.T), check.shape)
        np.testing.assert_allclose(check.analytic, flat[picked], rtol=1e-12, atol=1e-15)
