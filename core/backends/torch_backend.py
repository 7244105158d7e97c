"""The PyTorch backend: forward with torch ops, backward with autograd, on cpu or cuda.

This module is imported only when the torch backend is chosen, so ``torch``
never loads for NumPy runs. The forward pass runs layer by layer and keeps
every ``z`` and ``a`` with its graph. The loss phase runs autograd once, from
the loss down to every parameter, ``z`` and ``a`` (it must hand out the
output's dL/da anyway, and one autograd call costs about as much as a small
layer's forward); each ``backward_layer(i)`` then reveals layer ``i``'s part —
dL/dz, the gradients, dL/da of the layer below — so stepping by layer shows
the same pieces, in the same order, as the NumPy reference. Every tensor
handed out (``z``, ``a``, ``dL_da``, ``dL_dz``, ``grads``) is detached from
the graph and stays on the device until ``to_host`` is called.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendUnavailable
from ..maths import losses
from ..maths.activations import ALIASES, LEAKY_SLOPE
from ..maths.optimizers import ArrayModule
from ..maths.windows import padding_of
from ..spec.scenario import LayerSpec, Scenario
from .base import Backend

_IMPORT_ERROR: ImportError | OSError | None
try:
    import torch
    import torch.nn.functional as F
except (ImportError, OSError) as err:  # reported, in one line, when the backend is built
    _IMPORT_ERROR = err
else:
    _IMPORT_ERROR = None

INSTALL_HINT = (
    "the torch backend needs PyTorch: pip install 'torch==2.13.0' (CPU) "
    "or see pytorch.org for a CUDA build"
)
DEVICE_HINT = "use cpu, cuda, cuda:N (N = 0, 1, …) or auto"

# torch's softplus returns z itself above this threshold. At 40, log1p(exp(-z)) is
# below half an ulp of z even in float64, so the result equals the NumPy
# reference's max(z, 0) + log1p(exp(-|z|)) to rounding everywhere (torch's
# default of 20 would differ by up to 1e-10 relative just above it).
SOFTPLUS_THRESHOLD = 40.0

_TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
if _IMPORT_ERROR is None:
    _TORCH_ACTIVATIONS = {
        # Each matches core/activations.py in value and, through autograd, in derivative.
        "linear": lambda z: z,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_SLOPE),
        "elu": F.elu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda z: torch.softmax(z, dim=-1),
        "softplus": lambda z: F.softplus(z, beta=1.0, threshold=SOFTPLUS_THRESHOLD),
        "swish": F.silu,
        "gelu": lambda z: F.gelu(z, approximate="none"),
    }


def _require_torch() -> None:
    err = _IMPORT_ERROR
    if err is None:
        return
    if isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == "torch":
        raise BackendUnavailable(INSTALL_HINT)
    # Installed but broken (a missing CUDA library, say): say so, then how to fix.
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    raise BackendUnavailable(
        f"PyTorch is installed but cannot be imported ({detail}); {INSTALL_HINT}"
    )


def visible_devices() -> list[str]:
    """The devices this PyTorch can use: ``cpu``, then ``cuda:0``, ``cuda:1``, …"""
    _require_torch()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{n}" for n in range(count))]


def resolve_device(requested: str) -> str:
    """The device to run on: ``cpu``, ``cuda`` or ``cuda:N``; ``auto`` picks cuda when present.

    Raises BackendUnavailable, in one line, for a malformed name or a device
    that is not visible, listing the devices that are.
    """
    _require_torch()
    name = requested.strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise BackendUnavailable(f"unknown device '{requested}'; {DEVICE_HINT}")
    visible = visible_devices()
    if len(visible) == 1:
        build = "" if torch.version.cuda else "; this PyTorch is a CPU-only build"
        raise BackendUnavailable(
            f"device '{requested}': no CUDA device is visible (visible devices: cpu{build}); "
            "use --device cpu or --device auto"
        )
    if match.group(1) is not None and f"cuda:{int(match.group(1))}" not in visible:
        raise BackendUnavailable(
            f"device '{requested}' is not visible (visible devices: {', '.join(visible)})"
        )
    return name if match.group(1) is None else f"cuda:{int(match.group(1))}"


def _clip_keep_grad(p: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``clip(p)`` in value, identity in gradient.

    The NumPy reference's dL/da for the cross-entropies is the derivative
    formula evaluated at the clipped probability (never zeroed outside the clip
    range); the straight-through clip makes autograd give exactly that. Only a
    cross-entropy on an output that is not its own sigmoid or softmax comes this
    way, which the scenario checks refuse today.
    """
    return p + (p.clamp(low, high) - p).detach()


def _probability_loss(name: str, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The loss as a function of the output probabilities ``a`` (batch, units), as Keras reduces it."""
    if name == "mean_squared_error":
        diff = a - y
        return (diff * diff).mean()
    if name == "mean_absolute_error":
        return (a - y).abs().mean()
    if name == "binary_crossentropy":
        p = _clip_keep_grad(a, losses.EPSILON, 1.0 - losses.EPSILON)
        return -(y * torch.log(p) + (1.0 - y) * torch.log(1.0 - p)).mean()
    p = _clip_keep_grad(a, losses.EPSILON, 1.0)
    return -(y * torch.log(p)).sum(dim=-1).mean()


def _logit_loss(name: str, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The loss from the output logits ``z`` (batch, units), with log-sum-exp: finite at ±1000."""
    if name == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(z, y)
    # Categorical: probability targets; summed over classes, averaged over the batch.
    return F.cross_entropy(z, y)


def _fused_output_dL_da(name: str, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """dL/da of a fused output (batch, units): the derivative of ``_probability_loss`` at ``a``.

    It lies off the backprop path (the fused loss goes straight from the logits
    to dL/dz), so it is shown, not propagated. Written out rather than taken by
    a second autograd graph, which cost a tenth of a whole glyphs step; a test
    checks it against autograd of ``_probability_loss``.
    """
    if name == "binary_crossentropy":
        p = a.clamp(losses.EPSILON, 1.0 - losses.EPSILON)
        return (p - y) / (p * (1.0 - p)) / a.numel()
    return -(y / a.clamp(losses.EPSILON, 1.0)) / a.shape[0]


class TorchBackend(Backend):
    """Parameters and intermediates as torch tensors in ``dtype`` on ``device``.

    ``device`` is the resolved device (``auto`` becomes ``cuda`` or ``cpu``).
    Parameters are plain tensors, replaced by ``set_params`` and never written
    in place; each forward pass takes detached autograd leaves that share their
    storage, so the graph never reaches the tensors the history keeps.
    """

    name = "torch"

    def __init__(
        self,
        scenario: Scenario,
        params: dict[str, NDArray[np.float64]],
        dtype: str,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        _require_torch()
        if dtype not in ("float32", "float64"):
            raise BackendUnavailable(f"unknown dtype '{dtype}'; use float32 or float64")
        self.device = resolve_device(device)
        self.dtype = dtype
        # The optimizers need sqrt, zeros_like and operators, which torch has. mypy
        # cannot match a module against a protocol through torch's star re-exports.
        self.xp = cast(ArrayModule, torch)
        self._torch_device = torch.device(self.device)
        self._torch_dtype = torch.float64 if dtype == "float64" else torch.float32
        self.scenario = scenario
        self.input_shape = scenario.sample_shape
        self.layers = scenario.layers
        self._activations: list[Callable[[torch.Tensor], torch.Tensor]] = []
        for layer in self.layers:
            act = ALIASES.get(layer.activation, layer.activation)
            if act not in _TORCH_ACTIVATIONS:
                raise BackendUnavailable(
                    f"the torch backend has no activation '{layer.activation}'; use --backend numpy"
                )
            self._activations.append(_TORCH_ACTIVATIONS[act])
        self.loss_name = losses.canonical(scenario.loss)
        self.fused = losses.FUSED.get(self.loss_name) == self.layers[-1].activation
        self.regularizers = {k: r for layer in self.layers for k, r in layer.regularizers.items()}
        self._reset_step()
        self.set_params({k: self.from_host(v) for k, v in params.items()})

    # moving data -------------------------------------------------------------
    def to_host(self, array: Any) -> NDArray[Any]:
        if isinstance(array, torch.Tensor):
            return array.detach().cpu().numpy()
        return np.asarray(array)

    def from_host(self, array: NDArray[Any]) -> torch.Tensor:
        # A copy: the tensor must not share memory with the caller's array.
        return torch.tensor(array, dtype=self._torch_dtype, device=self._torch_device)

    # one step ----------------------------------------------------------------
    def _reset_step(self) -> None:
        n = len(self.layers)
        # The graph-connected tensors of this step's forward pass; the lists the
        # base class exposes hold detached views of them.
        self._leaves: dict[str, torch.Tensor] = {}
        self._z_graph: list[torch.Tensor | None] = [None] * n
        self._a_graph: list[torch.Tensor | None] = [None] * n
        self._backprop: dict[str, torch.Tensor] | None = None

    def begin(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        masks: dict[int, NDArray[Any]] | None = None,
    ) -> None:
        super().begin(x, y, masks)
        self._reset_step()

    def z_slots(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def _leaf(self, name: str) -> torch.Tensor:
        """This step's autograd leaf for a parameter: same storage, its own ``.grad`` slot."""
        leaf: torch.Tensor = self.params[name].detach().requires_grad_(True)
        self._leaves[name] = leaf
        return leaf

    def forward_layer(self, i: int) -> None:
        layer = self.layers[i]
        a_prev = self.x if i == 0 else self._a_graph[i - 1]
        assert a_prev is not None, "layers run in order, from begin()"
        params: dict[str, torch.Tensor] = {name: self._leaf(name) for name in layer.param_names}
        for name in layer.state_names:
            params[name] = self.params[name]
        z = self._layer_forward(i, params, a_prev, training=True)
        a = self._activations[i](z)
        self._z_graph[i], self._a_graph[i] = z, a
        self.z[i] = z.detach()
        self.a[i] = self.z[i] if a is z else a.detach()

    def _layer_forward(
        self, i: int, params: dict[str, torch.Tensor], a_prev: torch.Tensor, training: bool
    ) -> torch.Tensor:
        """Layer ``i``'s ``z`` from ``a_prev`` with torch's own ops; channels last in and out."""
        layer = self.layers[i]
        kind, n = layer.type, layer.name
        if kind == "dense":
            kernel = params[f"{n}.kernel"]
            if layer.use_bias:
                return torch.addmm(params[f"{n}.bias"], a_prev, kernel)
            return a_prev @ kernel
        if kind == "flatten":
            return a_prev.reshape(len(a_prev), -1)
        if kind == "dropout":
            mask = self.masks.get(i) if training else None
            if mask is None:
                return a_prev.view_as(a_prev)
            return a_prev * self.from_host(mask)
        if kind == "batch_normalization":
            return self._batch_norm(layer, params, a_prev, training)
        # conv2d and pooling: NHWC → NCHW, TensorFlow's (possibly one-sided) padding
        # made explicit, torch's op, back to NHWC.
        (top, bottom), (left, right) = padding_of(
            layer.input_shape, layer.kernel_size, layer.strides, layer.padding
        )
        x = a_prev.permute(0, 3, 1, 2)
        pads = (left, right, top, bottom)
        if kind == "conv2d":
            weight = params[f"{n}.kernel"].permute(3, 2, 0, 1)  # (filters, in, kh, kw)
            bias = params[f"{n}.bias"] if layer.use_bias else None
            out = F.conv2d(F.pad(x, pads), weight, bias, stride=layer.strides)
        elif kind == "max_pooling2d":
            padded = F.pad(x, pads, value=-math.inf) if any(pads) else x
            out = F.max_pool2d(padded, layer.kernel_size, layer.strides)
        else:  # average_pooling2d: the padding is left out of each window's count, as Keras
            out = F.avg_pool2d(F.pad(x, pads), layer.kernel_size, layer.strides)
            if any(pads):
                ones = torch.ones((1, 1, *layer.input_shape[:2]), dtype=x.dtype, device=x.device)
                share = F.avg_pool2d(F.pad(ones, pads), layer.kernel_size, layer.strides)
                out = out / share
        return out.permute(0, 2, 3, 1)

    def _batch_norm(
        self,
        layer: LayerSpec,
        params: dict[str, torch.Tensor],
        a_prev: torch.Tensor,
        training: bool,
    ) -> torch.Tensor:
        n = layer.name
        channels_first = a_prev.permute(0, 3, 1, 2) if a_prev.dim() == 4 else a_prev
        moving_mean = params[f"{n}.moving_mean"]
        moving_var = params[f"{n}.moving_variance"]
        gamma, beta = params[f"{n}.gamma"], params[f"{n}.beta"]
        if not training:
            out = F.batch_norm(
                channels_first, moving_mean, moving_var, gamma, beta, False, 0.0, layer.epsilon
            )
        else:
            # torch's momentum weighs the batch, Keras' the moving value: 0.99 in
            # Keras is 0.01 in torch. torch's running variance is the unbiased one
            # while Keras averages the batch's own (biased) variance, so that one
            # is worked out here; only the running mean is torch's.
            running_mean = moving_mean.clone()
            running_var = moving_var.clone()
            axes = tuple(d for d in range(a_prev.dim() - 1))
            if a_prev.numel() == a_prev.shape[-1]:
                # One value per channel (a batch of one after flatten): torch refuses,
                # Keras normalizes to β. The same formula, written out.
                batch_mean = a_prev.mean(dim=axes)
                centred = a_prev - batch_mean
                variance = (centred * centred).mean(dim=axes)
                m = layer.momentum
                self.state_updates[f"{n}.moving_mean"] = moving_mean * m + batch_mean.detach() * (
                    1.0 - m
                )
                self.state_updates[f"{n}.moving_variance"] = moving_var * m + variance.detach() * (
                    1.0 - m
                )
                return centred / torch.sqrt(variance + layer.epsilon) * gamma + beta
            out = F.batch_norm(
                channels_first,
                running_mean,
                running_var,
                gamma,
                beta,
                True,
                1.0 - layer.momentum,
                layer.epsilon,
            )
            with torch.no_grad():
                batch_var = torch.var_mean(a_prev, dim=axes, unbiased=False)[0]
                m = layer.momentum
                self.state_updates[f"{n}.moving_mean"] = running_mean
                self.state_updates[f"{n}.moving_variance"] = moving_var * m + batch_var * (1.0 - m)
        return out.permute(0, 2, 3, 1) if a_prev.dim() == 4 else out

    def compute_loss(self) -> float:
        """The loss of this step's batch; runs autograd for the whole step (see the module)."""
        last = len(self.layers) - 1
        z_out, a_out = self._z_graph[last], self._a_graph[last]
        assert z_out is not None and a_out is not None, "forward comes before the loss"
        keys: list[str] = []
        inputs: list[torch.Tensor] = []
        for i in range(last + 1):
            z, a = self._z_graph[i], self._a_graph[i]
            assert z is not None and a is not None
            keys.append(f"dL_dz{i}")
            inputs.append(z)
            # Fused, the loss is taken from the logits: the output's a is off its path.
            if i < last or not self.fused:
                keys.append(f"dL_da{i}")
                inputs.append(a)
        for name, leaf in self._leaves.items():
            keys.append(name)
            inputs.append(leaf)
        if self.fused:
            loss = _logit_loss(self.loss_name, self.y, z_out)
        else:
            loss = _probability_loss(self.loss_name, self.y, a_out)
        if self.regularizers:  # Keras adds the weight penalties to the loss; autograd sees them
            penalty = sum(
                (reg.penalty(self._leaves[name]) for name, reg in self.regularizers.items()),
                torch.zeros((), dtype=self._torch_dtype, device=self._torch_device),
            )
            self.penalty_value = float(penalty.detach())
            loss = loss + penalty
        found = dict(zip(keys, torch.autograd.grad(loss, inputs), strict=True))
        self._backprop = found
        if self.fused:
            self.dL_dz[last] = found[f"dL_dz{last}"]
            self.dL_da[last] = _fused_output_dL_da(self.loss_name, self.y, self.a[last])
        else:
            self.dL_da[last] = found[f"dL_da{last}"]
        return float(loss.detach())

    def backward_layer(self, i: int) -> None:
        found = self._backprop
        assert found is not None, "compute_loss comes before backward"
        if self.dL_dz[i] is None:
            self.dL_dz[i] = found[f"dL_dz{i}"]
        for name in self.layers[i].param_names:
            self.grads[name] = found[name]
            reg = self.regularizers.get(name)
            if reg is not None:  # autograd's gradient holds it; its part is kept to be shown
                self.penalty_grads[name] = reg.gradient(self.params[name], torch.sign)
        if i > 0:
            self.dL_da[i - 1] = found[f"dL_da{i - 1}"]

    def predict(self, x: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[Any]]:
        with torch.no_grad():
            a = z = self.from_host(self.shaped(x))
            for i in range(len(self.layers)):
                z = self._layer_forward(i, self.params, a, training=False)
                a = self._activations[i](z)
        return self.to_host(z), self.to_host(a)
