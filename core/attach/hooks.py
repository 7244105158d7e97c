"""Following the user's model through one forward pass: which modules ran, in what order.

A *layer* of an attached model is one call of a module during the forward
pass: every leaf module call, and every call of a module that owns parameters
its called submodules do not use (``nn.MultiheadAttention`` uses
``out_proj.weight`` without calling ``out_proj``; ``nn.LSTM`` has no
submodules at all). So every parameter belongs to some layer. A module called
twice is two layers: ``block`` and ``block#2``. Layers are listed in the order
their calls finished, which for leaf modules is the order they ran.

While capturing, forward hooks keep each layer's first input and its output
(the first tensor of a tuple, a list or a dict) as detached copies, and a
tensor hook on the output keeps dL/d(output) when the backward pass reaches it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

__all__ = ["Call", "LayerInfo", "Tracer", "drivable", "first_tensor", "never_in_place"]


def first_tensor(value: Any, depth: int = 0) -> torch.Tensor | None:
    """The first tensor inside ``value`` (a tensor, a tuple, a list, a dict or an object
    with ``__dict__`` such as a model output), or None."""
    if isinstance(value, torch.Tensor):
        return value
    if depth > 4:
        return None
    if isinstance(value, (tuple, list)):
        items: Iterator[Any] = iter(value)
    elif isinstance(value, dict):
        items = iter(value.values())
    else:
        return None
    for item in items:
        found = first_tensor(item, depth + 1)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class LayerInfo:
    """One layer: a call of ``module`` (its ``call``-th in a pass, from 0)."""

    name: str
    path: str
    module: nn.Module
    call: int
    param_names: tuple[str, ...]


@dataclass(eq=False)
class Call:
    """What one module call produced during a captured pass."""

    module: nn.Module
    number: int  # which call of this module in the pass, from 0
    leaf: bool  # no submodule was called inside it
    a_prev: torch.Tensor | None
    output: torch.Tensor | None
    grad: torch.Tensor | None = None
    children_called: bool = False
    grad_order: int = -1  # when its gradient arrived in the backward pass
    # autograd's nodes at the two ends of the call (references, nothing computed):
    # what made the output, and what made the input (None for data or a leaf)
    grad_fn: Any = None
    input_fn: Any = None


@dataclass(eq=False)
class _Frame:
    module: nn.Module
    children_called: bool = False
    a_prev: torch.Tensor | None = None
    input_fn: Any = None


@dataclass(eq=False)
class Tracer:
    """Hooks on every module of ``model``; ``capture()`` arms them for one pass."""

    model: nn.Module
    calls: list[Call] = field(default_factory=list)
    armed: bool = False
    keep_copies: bool = True
    layers: set[int] | None = None  # ids of the modules whose calls are layers; None: all
    _stack: list[_Frame] = field(default_factory=list)
    _counts: dict[int, int] = field(default_factory=dict)
    _handles: list[Any] = field(default_factory=list)
    _arrivals: int = 0
    # Copies made this pass, by the tensor copied: (tensor, its version then, the copy).
    # A layer's input is most often the output of the layer before, not changed since.
    _copies: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = field(default_factory=dict)
    # Driven calls whose outputs keep their own .grad: (call, output), in forward order.
    _retained: list[tuple[Call, torch.Tensor]] = field(default_factory=list)

    def install(self, modules: Iterable[nn.Module] | None = None) -> None:
        """Hooks on ``modules`` (every module of the model by default)."""
        for module in self.model.modules() if modules is None else modules:
            self._handles.append(
                module.register_forward_pre_hook(self._pre_hook(module), with_kwargs=True)
            )
            self._handles.append(
                module.register_forward_hook(self._post_hook(module), with_kwargs=True)
            )

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def start(self) -> None:
        """Arm the hooks for one forward pass, forgetting the last one's calls."""
        self.calls = []
        self._stack = []
        self._counts = {}
        self._arrivals = 0
        self._copies = {}
        self._retained = []
        self.armed = True

    def stop(self) -> None:
        self.armed = False
        self._copies = {}

    def _copy(self, tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        detached = tensor.detach()
        if not self.keep_copies:
            return detached
        known = self._copies.get(id(tensor))
        if known is not None and known[0] is tensor and known[1] == tensor._version:
            return known[2]  # copied already, and not written in place since
        # A later in-place op (ReLU(inplace=True)) would rewrite what this module output.
        copy = detached.clone()
        self._copies[id(tensor)] = (tensor, tensor._version, copy)
        return copy

    def drive(self, children: Sequence[nn.Module], x: Any) -> Any:
        """``nn.Sequential.forward`` on ``x``, its ``children`` called one after another,
        each call kept as the hooks keep it but without any hook: a module with hooks
        takes torch's slow path, two Python calls and a frame per call."""
        self.start()
        counts: dict[int, int] = {}
        out: torch.Tensor | None = None
        kept_out: torch.Tensor | None = None
        try:
            value = x
            for module in children:
                a_prev = value if isinstance(value, torch.Tensor) else first_tensor((value,))
                input_fn = a_prev.grad_fn if a_prev is not None else None
                # Most often the output of the module before, kept already (one tensor, once).
                kept = kept_out if a_prev is out and out is not None else self._copy(a_prev)
                value = module(value)
                number = counts.get(id(module), 0)
                counts[id(module)] = number + 1
                out = value if isinstance(value, torch.Tensor) else first_tensor(value)
                kept_out = self._copy(out)
                call = Call(
                    module=module,
                    number=number,
                    leaf=True,
                    a_prev=kept,
                    output=kept_out,
                    grad_fn=out.grad_fn if out is not None else None,
                    input_fn=input_fn,
                )
                self.calls.append(call)
                if out is not None and out.requires_grad and torch.is_grad_enabled():
                    if self.keep_copies:
                        out.register_hook(self._grad_hook(call))  # type: ignore[no-untyped-call]
                    else:
                        # Nothing writes in place, so the output's own .grad is dL/d(output):
                        # no Python hook to register (10 µs) nor to call in backward.
                        out.retain_grad()
                        self._retained.append((call, out))
            return value
        finally:
            self.stop()

    def collect_grads(self) -> None:
        """After backward: dL/d(output) of the calls whose outputs kept their ``.grad``
        (see :meth:`drive`), in the order backward reached them."""
        for call, out in reversed(self._retained):
            grad = out.grad
            if grad is not None:
                call.grad = grad.detach() if grad.requires_grad else grad
                call.grad_order = self._arrivals
                self._arrivals += 1
        self._retained = []

    def _pre_hook(self, module: nn.Module) -> Callable[..., None]:
        def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not self.armed:
                return
            if self._stack:
                self._stack[-1].children_called = True
            kept = self.layers is None or id(module) in self.layers
            a_prev = first_tensor(args) if kept else None
            if kept and a_prev is None:
                a_prev = first_tensor(kwargs)
            input_fn = a_prev.grad_fn if a_prev is not None else None
            self._stack.append(_Frame(module, a_prev=self._copy(a_prev), input_fn=input_fn))

        return hook

    def _post_hook(self, module: nn.Module) -> Callable[..., None]:
        def hook(
            _module: nn.Module, _args: tuple[Any, ...], _kwargs: dict[str, Any], output: Any
        ) -> None:
            if not self.armed or not self._stack:
                return
            frame = self._stack.pop()
            number = self._counts.get(id(module), 0)
            self._counts[id(module)] = number + 1
            if self.layers is not None and id(module) not in self.layers:
                return  # a container: its calls are not layers, nothing to keep
            out = first_tensor(output)
            call = Call(
                module=module,
                number=number,
                leaf=not frame.children_called,
                a_prev=frame.a_prev,
                output=self._copy(out),
                grad_fn=out.grad_fn if out is not None else None,
                input_fn=frame.input_fn,
            )
            self.calls.append(call)
            if out is not None and out.requires_grad and torch.is_grad_enabled():
                out.register_hook(self._grad_hook(call))  # type: ignore[no-untyped-call]

        return hook

    def _grad_hook(self, call: Call) -> Callable[[torch.Tensor], None]:
        # A weak reference: the hook lives on the output's autograd node, which the call
        # holds (``grad_fn``); a strong one would make a cycle through autograd's C++
        # objects that the garbage collector cannot see, keeping every step's calls,
        # copies and gradients alive for good.
        ref = weakref.ref(call)

        def hook(grad: torch.Tensor) -> None:
            call = ref()
            if call is None:
                return
            call.grad = grad.detach()
            call.grad_order = self._arrivals
            self._arrivals += 1

        return hook


def discover_layers(model: nn.Module, calls: list[Call]) -> list[LayerInfo]:
    """The layers of ``model`` from the calls of one pass, in the order the calls finished."""
    path_of = {id(m): path for path, m in model.named_modules()}
    name_of = {id(p): name for name, p in model.named_parameters()}
    called = {id(c.module) for c in calls}
    layers: list[LayerInfo] = []
    for c in calls:
        owned = _owned_params(c.module, called)
        if not (c.leaf or owned):
            continue
        if c.leaf:
            owned = [p for p in c.module.parameters()]
        path = path_of.get(id(c.module), "")
        base = path or "model"
        name = base if c.number == 0 else f"{base}#{c.number + 1}"
        names = tuple(dict.fromkeys(name_of[id(p)] for p in owned if id(p) in name_of))
        layers.append(LayerInfo(name, path, c.module, c.number, names))
    return layers


def _owned_params(module: nn.Module, called: set[int]) -> list[nn.Parameter]:
    """Parameters of ``module`` that no called submodule uses: its own, and those of
    submodules never called (reached through uncalled submodules only)."""
    found = [p for p in module._parameters.values() if p is not None]
    for child in module.children():
        if id(child) not in called:
            found.extend(child.parameters())
    return found


def drivable(model: nn.Module, layers: Sequence[LayerInfo]) -> list[nn.Module] | None:
    """The children of ``model`` when the engine may call them itself in place of
    ``model(x)`` (:meth:`Tracer.drive`): an ``nn.Sequential`` whose own ``forward`` is
    torch's, whose layers are its children in order, and that no hook watches. Else None."""
    if type(model).forward is not nn.Sequential.forward or not isinstance(model, nn.Sequential):
        return None
    children = list(model)
    if len(children) != len(layers):
        return None
    counts: dict[int, int] = {}
    for module, info in zip(children, layers, strict=True):
        number = counts.get(id(module), 0)
        counts[id(module)] = number + 1
        if info.module is not module or info.call != number:
            return None
    return children if unhooked(model) else None


def never_in_place(children: Sequence[nn.Module], loss_fn: Any) -> bool:
    """Whether nothing in a driven ``nn.Sequential`` (nor its loss) can write into a
    tensor it was given: every module is one of torch's own, not ``inplace=True``
    and unhooked, and the loss is torch's own. Then the batch and each module's
    output keep their numbers for the rest of the step (the next step's pass makes
    new tensors), so the tracer can keep them as they are instead of copying them."""
    for child in children:
        for module in child.modules():
            if not type(module).__module__.startswith("torch.nn.modules."):
                return False
            if getattr(module, "inplace", False) or not unhooked(module):
                return False
    if isinstance(loss_fn, nn.Module):
        return type(loss_fn).__module__ == "torch.nn.modules.loss" and unhooked(loss_fn)
    return getattr(loss_fn, "__module__", None) == "torch.nn.functional"


def unhooked(model: nn.Module) -> bool:
    """No hook on ``model`` itself, nor a global module hook: ``model(x)`` then does
    nothing but call its ``forward``."""
    own = (
        model._forward_hooks,
        model._forward_pre_hooks,
        model._backward_hooks,
        model._backward_pre_hooks,
    )
    shared = (
        torch_module._global_forward_hooks,
        torch_module._global_forward_pre_hooks,
        torch_module._global_backward_hooks,
        torch_module._global_backward_pre_hooks,
    )
    return not any(own) and not any(shared)
