"""The network: each layer's shape and activation, how far this step has got, the selection."""

from __future__ import annotations

from typing import Any

import numpy as np
from backprop_tui.core.maths.optimizers import rule_text
from rich.text import Text
from textual.binding import Binding
from textual.events import Click

from ..render import count, fit, short
from .base import Pane


class NetworkPane(Pane):
    """Layers top to bottom; ``up``/``down`` or a click selects one."""

    TITLE = "network"
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("up", "app.layer(-1)", "previous layer", show=False),
        Binding("down", "app.layer(1)", "next layer", show=False),
    ]
    FIRST_LAYER_ROW = 1  # the input line comes first

    def summary(self, width: int) -> Text:
        s = self.session
        shape = " → ".join(
            [str(s.dbg.scenario.inputs)] + [str(layer.units) for layer in s.dbg.scenario.layers]
        )
        return Text(fit(f"{shape} · {s.spec.name} selected", width), no_wrap=True)

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        dbg = s.dbg
        scenario = dbg.scenario
        lines = [Text(fit(f"  input   {scenario.inputs} features", width), no_wrap=True)]
        name_width = max(len(layer.name) for layer in scenario.layers)
        for i, layer in enumerate(scenario.layers):
            selected = i == s.layer
            marks = []
            if dbg.record_of("forward", i) is not None:
                marks.append("fwd✓")
            backward = dbg.record_of("backward", i)
            if backward is not None:
                marks.append("bwd✓")
                norm = self._grad_norm(i, backward)
                if norm is not None:
                    marks.append(f"‖g‖ {norm:.3g}")
            text = (
                f"{'▶' if selected else ' '} {layer.name.ljust(name_width)}  "
                f"{layer.inputs}→{layer.units} {layer.activation}  "
                f"{count(layer.param_count)}w  {' '.join(marks)}"
            )
            style = "reverse bold" if selected else ""
            lines.append(Text(fit(text, width), style=style, no_wrap=True))
        lines.append(Text(fit(f"  loss    {scenario.loss}", width), style="dim", no_wrap=True))
        lines.append(
            Text(fit(f"  {rule_text(scenario.optimizer)}", width), style="dim", no_wrap=True)
        )
        lines += self._batch_lines(width, height - len(lines))
        return lines

    def _grad_norm(self, i: int, backward: Any) -> float | None:
        """‖dL/dθ‖ over the layer's parameters, as ``grad_norm(layer)`` in a breakpoint.

        After a whole step the engine has measured it already; mid-step it is one pass
        over the gradients (squares summed, no BLAS threads on the UI's side).
        """
        dbg = self.session.dbg
        layer = dbg.scenario.layers[i]
        stats = getattr(dbg, "stats", None)
        if stats is not None and dbg.phase == "update" and stats.step == dbg.step_index:
            value = stats.grad_norm(layer.name)
            if value is not None:
                return float(value)
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # inf is shown as inf
            for name in layer.param_names:
                grad = backward.arrays.get(name)
                if grad is None:
                    return None
                total += float(np.square(grad).sum())
        return float(np.sqrt(total))

    def _batch_lines(self, width: int, room: int) -> list[Text]:
        """The batch about to be taken (before the input phase) or the one in use."""
        s = self.session
        dbg = s.dbg
        if room < 1:
            return []
        data = dbg.scenario.data
        upcoming = s.next_batch()
        if upcoming is not None:
            indices, head = upcoming, "next batch"
        else:
            record = dbg.record_of("input")
            if record is None:
                return []
            indices, head = record.arrays["indices"], "this batch"
        ids = " ".join(f"#{i}" for i in indices[:12]) + (" …" if len(indices) > 12 else "")
        lines = [Text(fit(f"  {head} ({len(indices)}): {ids}", width), style="bold", no_wrap=True)]
        x, y = data.x_train[indices], data.y_train[indices]
        if x.shape[1] > 6 or y.shape[1] > 4:
            return lines
        for k, index in enumerate(indices[: room - 1]):
            xs = " ".join(short(float(v)) for v in x[k])
            ys = " ".join(short(float(v)) for v in y[k])
            lines.append(Text(fit(f"   #{index}: x [{xs}] → y [{ys}]", width), no_wrap=True))
        return lines

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self.folded:
            return
        index = offset.y - self.FIRST_LAYER_ROW
        if 0 <= index < len(self.session.dbg.scenario.layers):
            self.app.call_later(self.app.run_action, f"select_layer({index})")
