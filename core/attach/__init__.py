"""The user's own PyTorch model as a :class:`~backprop_tui.core.RunView`.

``backprop_tui.core.attach(model, loss_fn, optimizer, data)`` imports torch
when it is called, never when ``backprop_tui.core`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import AttachError

if TYPE_CHECKING:
    from .run import AttachedRun

__all__ = ["AttachError", "attach"]


def attach(
    model: Any,
    loss_fn: Callable[[Any, Any], Any] | None,
    optimizer: Any,
    data: Iterable[Any],
    epochs: int = 1,
    scheduler: Any = None,
    clip_grad_norm: float | None = None,
    *,
    history_mb: float = 256.0,
    keyframe_every: int | None = None,
    breakpoints: Sequence[str] = (),
    diagnostics: Mapping[str, float | bool] | None = None,
) -> AttachedRun:
    """Debug ``model`` trained by ``optimizer`` on ``data``: a run to step, read and rewind.

    ``loss_fn(output, y)`` gives the loss of a batch ``(x, y)``; with ``loss_fn=None``
    the model computes its own (dict batches as keywords, tuples as arguments).
    ``scheduler`` is stepped after every optimizer step; ``clip_grad_norm`` clips
    the gradients' total norm between backward and update. Raises
    :class:`AttachError` (one sentence) for what cannot be debugged.
    """
    from .collective import world
    from .run import AttachedRun

    kind = AttachedRun
    place = world()
    if place is not None and place[0] == 0:
        from .ddp import LeaderRun  # rank 0 leads the other ranks (see ddp.py)

        kind = LeaderRun
    return kind(
        model,
        loss_fn,
        optimizer,
        data,
        epochs=epochs,
        scheduler=scheduler,
        clip_grad_norm=clip_grad_norm,
        history_mb=history_mb,
        keyframe_every=keyframe_every,
        breakpoints=breakpoints,
        diagnostics=diagnostics,
    )
