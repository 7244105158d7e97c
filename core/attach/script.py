"""A training script as the command line takes it: ``backprop-tui train.py``.

The script is the user's own code and runs as code (``runpy``), with its
folder first on ``sys.path`` as ``python train.py`` would have it, but under
the name ``__backprop_tui__``, so an ``if __name__ == "__main__":`` training
loop in it does not run. It defines ``model``, ``loss_fn``, ``optimizer`` and
``data`` at module level (and optionally ``epochs``, ``scheduler``,
``clip_grad_norm``), or a function ``make()`` that returns them in a dict.
A YAML scenario is never run this way: it stays data.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

from .errors import AttachError

__all__ = ["NEEDED", "OPTIONAL", "load_script", "user_error"]

NEEDED = ("model", "loss_fn", "optimizer", "data")
OPTIONAL = ("epochs", "scheduler", "clip_grad_norm")
RUN_NAME = "__backprop_tui__"


def load_script(path: str | Path) -> dict[str, Any]:
    """Run the script at ``path``; the arguments of ``attach`` it defines, by name.

    Raises :class:`AttachError`, one sentence naming the file (and the line, for an
    exception the script raised), when it cannot be run or lacks a name.
    """
    file = Path(path)
    if not file.is_file():
        raise AttachError(f"{path}: no such file; give the path of a Python training script")
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    try:
        namespace = runpy.run_path(str(file), run_name=RUN_NAME)
        source: Any = namespace
        make = namespace.get("make")
        if callable(make):
            source = make()
            if not isinstance(source, dict):
                raise AttachError(
                    f"{path}: make() must return a dict with {', '.join(NEEDED)}; "
                    f"it returned {type(source).__name__}"
                )
    except AttachError:
        raise
    except SystemExit as err:
        raise AttachError(
            f"{path}: the script exited (sys.exit({err.code!r})) while loading"
        ) from None
    except Exception as err:
        raise AttachError(user_error(err, file)) from err
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    missing = [name for name in NEEDED if name not in source]
    if missing:
        where = "make() returns" if callable(namespace.get("make")) else "the script defines"
        raise AttachError(
            f"{path}: {where} no {' or '.join(missing)}; define {', '.join(NEEDED)} at module "
            "level (loss_fn = None when the model computes its own loss), or a make() that "
            "returns them in a dict"
        )
    args = {name: source[name] for name in NEEDED}
    args.update({name: source[name] for name in OPTIONAL if name in source})
    return args


def _where(err: BaseException, file: Path) -> str:
    """``file:line`` of the deepest frame of the traceback inside ``file``."""
    line = None
    target = file.resolve()
    for frame in traceback.extract_tb(err.__traceback__):
        try:
            if Path(frame.filename).resolve() == target:
                line = frame.lineno
        except OSError:
            continue
    return f"{file}:{line}" if line is not None else str(file)


def user_error(err: BaseException, path: str | Path) -> str:
    """One line for an exception the user's code raised: ``train.py:12: ValueError: …``."""
    text = str(err).strip().splitlines()
    message = text[0] if text else ""
    return f"{_where(err, Path(path))}: {type(err).__name__}: {message}"
