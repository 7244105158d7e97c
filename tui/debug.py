"""``debug(model, loss_fn, optimizer, data)``: the app on the user's own PyTorch model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def debug(
    model: Any,
    loss_fn: Callable[[Any, Any], Any] | None,
    optimizer: Any,
    data: Iterable[Any],
    epochs: int = 1,
    scheduler: Any = None,
    clip_grad_norm: float | None = None,
    **options: Any,
) -> int | None:
    """Open the app on ``model`` trained by ``optimizer`` on ``data``; return when the
    user quits (with the app's exit code).

    The arguments are those of :func:`backprop_tui.core.attach`. Training happens on
    the model itself: after quitting, the model and optimizer hold the state the
    debugger left them in, and the hooks the debugger put on the model are gone.
    """
    from backprop_tui.core import attach

    from .app import make_app

    run = attach(
        model,
        loss_fn,
        optimizer,
        data,
        epochs=epochs,
        scheduler=scheduler,
        clip_grad_norm=clip_grad_norm,
        **options,
    )
    if run.distributed:  # under torchrun: rank 0 gets the app, the others follow it
        from backprop_tui.core.attach.ddp import follow, release, shutdown, world

        place = world()
        if place is not None and place[0] != 0:
            follow(run)
            shutdown(run)
            return 0
        try:
            return make_app(run).run()
        finally:
            release()
            shutdown(run)
    try:
        return make_app(run).run()
    finally:
        run.close()
