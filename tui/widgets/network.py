"""The network: each layer's shape and activation, how far this step has got, the selection."""

from __future__ import annotations

from typing import Any

from backprop_tui.core import LayerView
from rich.text import Text
from textual.binding import Binding
from textual.events import Click

from ..render import count, fit, short, wrap
from .base import Pane


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


class NetworkPane(Pane):
    """Layers top to bottom; ``up``/``down`` or a click selects one."""

    TITLE = "network"
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("up", "app.layer(-1)", "previous layer", show=False),
        Binding("down", "app.layer(1)", "next layer", show=False),
    ]
    FIRST_LAYER_ROW = 1  # the input line comes first

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown = (0, 0)  # the layers the last build showed, first to last (exclusive)

    def summary(self, width: int) -> Text:
        s = self.session
        shape = " → ".join(
            [_shape(s.view.input_shape)]
            + [
                _shape(layer.output_shape) if len(layer.output_shape) > 1 else str(layer.units)
                for layer in s.view.layers
            ]
        )
        return Text(fit(f"{shape} · {s.spec.name} selected", width), no_wrap=True)

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        dbg = s.view
        shape = dbg.input_shape
        count_ = shape[0] if len(shape) == 1 else 0
        plural = "s" if count_ != 1 else ""
        what = f"{count_} feature{plural}" if len(shape) == 1 else f"{_shape(shape)} values"
        lines = [Text(fit(f"  input   {what}", width), no_wrap=True)]
        name_width = max(len(layer.name) for layer in dbg.layers)
        first, last = self._window(height)
        self._shown = (first, last)
        if first > 0:
            lines.append(Text(fit(f"  ⋮ {first} more above", width), style="dim", no_wrap=True))
        for i in range(first, last):
            lines.append(self._layer_line(i, name_width, width))
        if last < len(dbg.layers):
            more = len(dbg.layers) - last
            lines.append(Text(fit(f"  ⋮ {more} more below", width), style="dim", no_wrap=True))
        lines.append(Text(fit(f"  loss    {dbg.loss_name}", width), style="dim", no_wrap=True))
        # The rule wraps, indented, where the pane has the rows: a cut formula says nothing.
        rule = wrap(dbg.update_rule, max(width - 2, 1), "dim")
        if len(rule) > 1 and height - len(lines) >= len(rule) + 1:
            lines += [Text("  ", style="dim") + line for line in rule]
        else:
            lines.append(Text(fit(f"  {dbg.update_rule}", width), style="dim", no_wrap=True))
        lines += self._batch_lines(width, height - len(lines))
        return lines

    def _window(self, height: int) -> tuple[int, int]:
        """The layers shown, ``first`` to ``last`` (exclusive): all of them where the pane
        has the rows below the input line (the loss, rule and batch lines come after,
        as far as there are rows), else as many as fit around the selected one, with a
        line above and below saying how many more there are, and the loss, rule and
        batch lines kept in view."""
        count_ = len(self.session.view.layers)
        if count_ <= height - 1:
            return 0, count_
        shown = max(height - 4 - 2, 1)  # input, loss, rule, batch; "more above" and "below"
        first = min(max(self.session.layer - shown // 2, 0), count_ - shown)
        return first, first + shown

    def _layer_line(self, i: int, name_width: int, width: int) -> Text:
        s = self.session
        dbg = s.view
        layer = dbg.layers[i]
        selected = i == s.layer
        done = []
        if dbg.record_of("forward", i) is not None:
            done.append("fwd✓")
        norm_text = ""
        if dbg.record_of("backward", i) is not None:
            done.append("bwd✓")
            norm = dbg.grad_norm(layer.name)
            if norm is not None:
                norm_text = f"‖g‖ {norm:.3g}"
        lead = f"{'▶' if selected else ' '} {layer.name.ljust(name_width)}  "
        head, short = lead + _layer_text(layer), lead + _layer_text(layer, short=True)
        kind = lead + layer.kind
        weights = f"{count(layer.param_count)}w"
        # The gradient norm is what diagnoses a layer: it keeps its place, and the
        # progress marks, the weight count and the shapes give way to it when the
        # line is short.
        for parts in (
            [head, weights, " ".join(done), norm_text],
            [head, weights, "✓" * len(done), norm_text],
            [head, "✓" * len(done), norm_text],
            [head, norm_text],
            [short, "✓" * len(done), norm_text],
            [short, norm_text],
            [kind, norm_text],
            [short],
        ):
            text = "  ".join(part for part in parts if part)
            if len(text) <= width:
                break
        style = "reverse bold" if selected else ""
        return Text(fit(text, width), style=style, no_wrap=True)

    def _batch_lines(self, width: int, room: int) -> list[Text]:
        """The batch about to be taken (before the input phase) or the one in use."""
        s = self.session
        dbg = s.view
        if room < 1:
            return []
        upcoming = s.next_batch()
        if upcoming is not None:
            head, indices, x, y = "next batch", upcoming.indices, upcoming.x, upcoming.y
        else:
            record = dbg.record_of("input")
            if record is None:
                return []
            head, indices = "this batch", record.arrays["indices"]
            x, y = record.arrays["x"], record.arrays["y"]
        ids = " ".join(f"#{i}" for i in indices[:12]) + (" …" if len(indices) > 12 else "")
        lines = [Text(fit(f"  {head} ({len(indices)}): {ids}", width), style="bold", no_wrap=True)]
        x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
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
        first, last = self._shown
        index = offset.y - self.FIRST_LAYER_ROW - (1 if first > 0 else 0) + first
        if first <= index < last:
            self.app.call_later(self.app.run_action, f"select_layer({index})")


def _layer_text(layer: LayerView, short: bool = False) -> str:
    """``4→3 relu`` for a Dense layer; the kind and output shape for the others
    (``conv2d 3×3 → 6×6×4 relu``); for a module of the user's own model, its type and
    what one sample goes in and comes out as (``Conv2d 1×8×8→4×6×6``, torch's layout),
    ``short``: only what comes out (``Conv2d →4×6×6``)."""
    if layer.total_params is not None:
        given = "" if short else _shape(layer.input_shape) if layer.input_shape else "?"
        module = f"{layer.kind} {given}→{_shape(layer.output_shape) or '?'}"
        if layer.activation and layer.activation != layer.kind.lower():
            module += f" {layer.activation}"
        return module
    if layer.kind == "dense" or not layer.output_shape or not layer.input_shape:
        return f"{layer.inputs}→{layer.units} {layer.activation or layer.kind}"
    text: str = layer.kind
    if layer.kind == "conv2d" and len(layer.kernel_shape) == 4:
        text += f" {layer.kernel_shape[0]}×{layer.kernel_shape[1]}"
    text += f" → {_shape(layer.output_shape)}"
    if layer.activation and layer.activation != "linear":
        text += f" {layer.activation}"
    return text
