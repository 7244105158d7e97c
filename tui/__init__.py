"""The terminal UI of backprop-tui; ``debug(model, loss_fn, optimizer, data)`` opens it on
your own PyTorch model. Importing this package loads neither Textual nor torch."""

from .debug import debug

__all__ = ["debug"]
