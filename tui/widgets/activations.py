"""Activations of the selected layer: its input, ``z`` and ``a`` for every sample of the batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from backprop_tui.core import LayerView
from numpy.typing import NDArray
from rich.text import Text

from ..blocks import Block, arrange, stats_text
from ..channels import channel_maps
from ..render import fit, wrap
from ..session import RECORDED
from .base import Pane


class ActivationsPane(Pane):
    TITLE = "activations"

    def summary(self, width: int) -> Text:
        s = self.session
        record = s.view.record_of("forward", s.layer)
        if record is None:
            why = (
                "not recorded in a replay"
                if s.dbg.kind == "replay"
                else "not computed yet this step"
            )
            return Text(fit(f"{s.spec.name}: {why}", width), no_wrap=True)
        head = f"{_a_title(s.spec)}: "
        return Text(fit(head + stats_text(record.arrays["a"], width=width - len(head)), width))

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        dbg = s.view
        spec = s.spec
        record = dbg.record_of("forward", s.layer)
        if record is None:
            return self._waiting(width, height)
        indices = self._indices()
        labels = [f"#{i}" for i in indices] if indices is not None else None
        key = (s.revision, record.step_index, s.layer)
        if np.ndim(record.arrays["a"]) == 4:
            return self._images(record.arrays, labels, key, width, height)
        blocks = [
            Block(
                "input" if s.layer == 0 else "a_prev",
                record.arrays["a_prev"],
                (*key, "a_prev"),
                labels,
                optional=True,
                zero_note=s.layer > 0,
            ),
            Block("z", record.arrays["z"], (*key, "z"), labels),
            Block(
                _a_title(spec),
                record.arrays["a"],
                (*key, "a"),
                labels,
                zero_note=spec.activation == "relu",
            ),
        ]
        if _module(spec):  # of your own model: z and a are its output, drawn once
            del blocks[1]
        return arrange(blocks, s.palette, width, height, s.grids)

    def _images(
        self,
        arrays: Mapping[str, NDArray[Any]],
        labels: list[str] | None,
        key: tuple[int, int, int],
        width: int,
        height: int,
    ) -> list[Text]:
        """A layer with image outputs: a per-channel heat map of the first sample's ``a``,
        then its input (the image, or the channels below) when there is room."""
        s = self.session
        spec = s.spec
        who = f"sample {labels[0]}" if labels else "sample 0"
        act = _a_title(spec)
        zero = spec.activation == "relu"
        output, a_prev = arrays["a"], arrays["a_prev"]
        title = f"{act}, {who}"
        if spec.channels_first:  # torch's (batch, C, H, W): one map per channel all the same
            output = np.moveaxis(output, 1, -1)
            if np.ndim(a_prev) == 4:
                a_prev = np.moveaxis(a_prev, 1, -1)
            # The layout is said where the title has room for it beside the channel count.
            laid_out = f"{act} (N,C,H,W), {who}"
            if len(f"{laid_out} · {output.shape[-1]} channels") <= width:
                title = laid_out
        lines = channel_maps(title, output, 0, s.palette, width, height, s.grids, (*key, "a"), zero)
        if np.ndim(a_prev) == 4 and height - len(lines) >= 6:
            what = "input" if s.layer == 0 else "a_prev"
            lines.append(Text())
            lines += channel_maps(
                f"{what}, {who}",
                a_prev,
                0,
                s.palette,
                width,
                height - len(lines),
                s.grids,
                (*key, "a_prev"),
            )
        return lines

    def _indices(self) -> list[int] | None:
        record = self.session.view.record_of("input")
        if record is None or "indices" not in record.arrays:
            return None
        return [int(i) for i in record.arrays["indices"]]

    def _waiting(self, width: int, height: int) -> list[Text]:
        """Before the forward pass reaches the layer: what will happen, and the batch it uses."""
        s = self.session
        dbg = s.view
        if s.read_only:
            return wrap(RECORDED.format(what="activations"), width, "italic")
        if dbg.phase == "update":
            text = (
                f"{s.spec.name}: z = a_prev·W + b, a = {s.spec.activation}(z), once the forward pass gets here"
                if not _module(s.spec)
                else f"{s.spec.name}: its output, once the forward pass gets here"
            )
            hint = "space: step a phase (input first) · l: one layer at a time"
        else:
            text = f"The forward pass has not reached {s.spec.name} yet."
            hint = "l: step one layer · space: the whole forward pass"
        lines = [
            Text(fit(text, width), no_wrap=True),
            Text(fit(hint, width), style="dim", no_wrap=True),
        ]
        batch = self._batch()
        if batch is not None and height > 6:
            head, indices, x, y = batch
            labels = [f"#{i}" for i in indices]
            key = (s.revision, dbg.step_index, head)
            blocks = [
                Block(f"{head}: x", x, (*key, "x"), labels),
                Block("y (target)", y, (*key, "y"), labels),
            ]
            lines += [Text(), *arrange(blocks, s.palette, width, height - 3, s.grids)]
        return lines

    def _batch(self) -> tuple[str, list[int], NDArray[Any], NDArray[Any]] | None:
        """(heading, sample ids, x, y) of the batch about to be taken or in use."""
        s = self.session
        upcoming = s.next_batch()
        if upcoming is not None:
            return ("next batch", [int(i) for i in upcoming.indices], upcoming.x, upcoming.y)
        record = s.view.record_of("input")
        if record is None:
            return None
        indices = [int(i) for i in record.arrays["indices"]]
        return "this batch", indices, record.arrays["x"], record.arrays["y"]


def _module(spec: LayerView) -> bool:
    """Whether ``spec`` is a module of your own model: one output, no z apart from it."""
    return spec.total_params is not None


def _a_title(spec: LayerView) -> str:
    """``a = relu(z)``; for a module of your own model, what it computes from its input
    (``a = gelu(a_prev)``), or ``output`` (an activation is a module of its own there)."""
    if not _module(spec):
        return f"a = {spec.activation}(z)"
    return f"a = {spec.activation}(a_prev)" if spec.activation else "output"
