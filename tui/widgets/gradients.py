"""dL/dW of the selected layer as a heat map (or numbers) with a cursor; the bias is the last row.

Before the backward pass reaches the layer there is no gradient yet, so the pane
shows the weights themselves: the cursor still picks the weight to edit (``w``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from backprop_tui.core import LayerView, RunSnapshot
from numpy.typing import NDArray
from rich.text import Text
from textual.binding import Binding
from textual.events import Click

from ..channels import filter_tiles
from ..render import (
    Grid,
    cell_width,
    fit,
    heat_lines,
    legend,
    num,
    number_lines,
    numbers_width,
    wrap,
)
from .base import Pane


def no_matrix(spec: LayerView) -> str:
    """What the pane says for a layer without a 2-D weight matrix."""
    if not spec.param_names:
        return f"{spec.name} ({spec.kind}) has no parameters: nothing to show here"
    return f"{spec.name} ({spec.kind}): {', '.join(spec.param_names)} have no 2-D matrix to draw"


def _recorded(shown: int, recorded: int) -> str:
    """Say when recorded numbers are older than the step on screen."""
    return "" if recorded == shown else f" recorded at step {recorded}"


class GradientsPane(Pane):
    TITLE = "gradients dL/dW"
    PREPARES = True
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("up", "app.cursor(-1, 0)", "cursor up", show=False),
        Binding("down", "app.cursor(1, 0)", "cursor down", show=False),
        Binding("left", "app.cursor(0, -1)", "cursor left", show=False),
        Binding("right", "app.cursor(0, 1)", "cursor right", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_size = (1, 1)  # weights per cell along each axis, for the cursor keys
        self.source_step = 0
        self._cells: tuple[Grid, Grid | None, int, int, int] | None = None  # heat map, for clicks
        self._heat_plan: tuple[int, int, int] | None = None  # (layer, rows, cols) last drawn

    def prepare(self, snapshot: RunSnapshot) -> None:
        """On the worker's thread, for a snapshot the screen will draw in full: the heat
        map of the selected layer's gradients at the size it was last drawn."""
        s = self.session
        plan = self._heat_plan
        if plan is None or plan[0] != s.layer or self.folded or not self.display:
            return
        layer, map_rows, map_cols = plan
        spec = snapshot.layers[layer]
        kernel_name = spec.kernel or f"{spec.name}.kernel"
        record = snapshot.record_of("backward", layer)
        if record is None or kernel_name not in record.arrays:
            return
        kernel = np.asarray(record.arrays[kernel_name]).reshape(int(spec.inputs), int(spec.units))
        key = (s.revision, record.step_index, "dL/dW", kernel_name)
        grid = s.grids.get(key, kernel, map_rows, map_cols)
        if spec.bias is not None and spec.bias in record.arrays:
            s.grids.get((*key, "bias"), record.arrays[spec.bias], 1, grid.values.shape[1])
        self._number_cells = (0, 1)  # numbers: (left margin, cell width), for clicks

    def arrays(self) -> tuple[str, NDArray[Any], NDArray[Any] | None]:
        """(what is shown, kernel (inputs, units), bias (units,) or None).

        ``self.source_step`` is the step those numbers belong to (for the cache key).
        """
        what, kernel, bias = self._raw()
        return what, self.session.as_matrix(kernel), bias

    def _raw(self) -> tuple[str, NDArray[Any], NDArray[Any] | None]:
        s = self.session
        dbg = s.view
        record = dbg.record_of("backward", s.layer)
        bias_name = s.bias_name
        if record is not None and s.kernel_name in record.arrays:
            bias = record.arrays[bias_name] if bias_name else None
            self.source_step = record.step_index
            return "dL/dW", record.arrays[s.kernel_name], bias
        if s.read_only:  # a recording keeps the gradients of some steps, not the records
            grads = dbg.grads
            if s.kernel_name in grads:
                self.source_step = dbg.recorded_step("grads") or dbg.step_index
                bias = grads.get(bias_name) if bias_name else None
                return (
                    f"dL/dW{_recorded(dbg.step_number, self.source_step)}",
                    grads[s.kernel_name],
                    bias,
                )
        params = dbg.params
        self.source_step = dbg.step_index
        what = "W"
        recorded = dbg.recorded_step("params")
        if recorded is not None:
            what += _recorded(dbg.step_number, recorded)
        return what, params[s.kernel_name], params[bias_name] if bias_name else None

    def layout_note(self) -> str:
        """How a kernel that is not a matrix is laid out (shown in the pane, not hidden)."""
        spec = self.session.spec
        shape = spec.kernel_shape
        if len(shape) == 4:
            kh, kw, cin, filters = shape
            return f"{kh}×{kw}×{cin}×{filters} kernel: row = (i·{kw}+j)·{cin}+c, column = filter"
        if spec.kind == "batch_normalization":
            return "row: gamma, b: beta, then the moving mean and variance (not trained)"
        return ""

    def wanted_rows(self, width: int, height: int) -> int:
        """Rows (with the top border) the compact layout should give: all of a small
        matrix, or half the screen for a heat map."""
        spec = self.session.spec
        if spec.kernel is None:
            return 4
        rows = int(spec.inputs) + (1 if spec.use_bias else 0) + 3
        if numbers_width((spec.units,), label_width=len(str(spec.inputs - 1))) > width:
            return max(height // 3, 6)
        return min(rows, max(height // 3, 6))

    def summary(self, width: int) -> Text:
        s = self.session
        if s.spec.kernel is None:  # no weight matrix: ReLU, dropout, a 4-D convolution
            return Text(fit(no_matrix(s.spec), width), no_wrap=True)
        what, kernel, _ = self.arrays()
        param, index = s.cursor_param()
        value = self.value_at(param, index)
        head = f"{what} {s.kernel_name} {kernel.shape[0]}×{kernel.shape[1]}"
        short = param.rsplit(".", 1)[-1]  # "kernel" or "bias": the layer is in the head
        forms = (
            f"{head} · cursor {param}{list(index)} {num(value)}",
            f"{head} · cursor {short}{list(index)} {num(value)}",
            f"{head} · {short}{list(index)} {num(value)}",
        )
        text = next((form for form in forms if len(form) <= width), forms[-1])
        return Text(fit(text, width), no_wrap=True)

    def value_at(self, param: str, index: tuple[int, ...]) -> float:
        """The shown number (gradient or weight) of ``param`` at ``index`` (its own shape)."""
        _, kernel, bias = self._raw()
        source = bias if param == self.session.bias_name and bias is not None else kernel
        return float(source[index])

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        if s.spec.kernel is None:
            return wrap(no_matrix(s.spec), width, "italic")
        what, kernel, bias = self.arrays()
        param, index = s.cursor_param()
        head = f"{what} {s.kernel_name} ({kernel.shape[0]}×{kernel.shape[1]})"
        head += f" · {param.split('.')[1]}{list(index)} = {num(self.value_at(param, index))}"
        lines = [Text(fit(head, width), style="bold", no_wrap=True)]
        states = [Text(fit(line, width), style="dim", no_wrap=True) for line in self._states()]
        inputs, units = kernel.shape
        rows = inputs + (1 if bias is not None else 0)
        label_width = len(str(inputs - 1))
        room = height - 1 - len(states)
        fits = numbers_width((units,), label_width=label_width) <= width and rows + 3 <= room
        if not fits:  # a conv kernel too big for numbers: a small map per filter, if they fit
            tiles = self._filters(width, room)
            if tiles is not None:
                return lines + tiles + states
        note = self.layout_note()
        if note and height > 6:
            lines.append(Text(fit(note, width), style="dim", no_wrap=True))
        height -= len(lines) - 1 + len(states)
        fits = numbers_width((units,), label_width=label_width) <= width and rows + 2 <= height
        if fits:
            lines += self._numbers(kernel, bias)
            if what == "W":
                note = "no gradient yet: the backward pass fills this in"
                if self.session.read_only:
                    note = "no gradient recorded at or before this step"
                lines.append(Text(fit(note, width), style="dim"))
        else:
            lines += self._heat(what, kernel, bias, width, height - 1)
        return lines + states

    def _filters(self, width: int, height: int) -> list[Text] | None:
        """A conv kernel as one kh × kw heat map per filter, of the cursor's input channel."""
        s = self.session
        shape = s.spec.kernel_shape
        if len(shape) != 4:
            return None
        _, raw, _ = self._raw()
        param, index = s.cursor_param()
        on_kernel = param == s.kernel_name
        channel = index[2] if on_kernel else 0
        cursor = (index[0], index[1], index[3]) if on_kernel else None
        tiles = filter_tiles(np.asarray(raw), channel, cursor, s.palette, width, height - 2)
        if tiles is None:
            return None
        self.step_size = (1, 1)
        self._cells = None
        self._number_cells = (width, 1)  # clicks: the tiles are not the matrix's cells
        where = f"input channel {channel} of {shape[2]}" if shape[2] > 1 else "one input channel"
        note = f"one {shape[0]}×{shape[1]} map per filter, {where} (row = (i·{shape[1]}+j)·{shape[2]}+c)"
        if not on_kernel:
            note += f" · cursor on {param}{list(index)}"
        scale = float(np.abs(np.asarray(raw)[:, :, channel, :]).max(initial=0.0))
        return [Text(fit(note, width), style="dim"), *tiles, legend(scale, s.palette, width)]

    def _states(self) -> list[str]:
        """The layer's non-trainable numbers (batch normalization's moving statistics)."""
        params = self.session.view.params
        lines = []
        for name in self.session.spec.state_names:
            if name in params:
                values = " ".join(num(float(v), 3) for v in np.ravel(params[name]))
                lines.append(f"{name.split('.')[-1]}: {values}")
        return lines

    def _numbers(self, kernel: NDArray[Any], bias: NDArray[Any] | None) -> list[Text]:
        s = self.session
        self.step_size = (1, 1)
        self._cells = None
        matrix = kernel if bias is None else np.vstack([kernel, bias[None, :]])
        labels = [str(i) for i in range(kernel.shape[0])] + (["b"] if bias is not None else [])
        cols = [str(j) for j in range(kernel.shape[1])]
        cell = max([len(num(float(v))) for v in matrix.reshape(-1)] + [len(c) for c in cols])
        self._number_cells = (max(len(label) for label in labels) + 1, cell)
        return number_lines(matrix, s.palette, s.cursor, labels, cols)

    def _heat(
        self, what: str, kernel: NDArray[Any], bias: NDArray[Any] | None, width: int, height: int
    ) -> list[Text]:
        s = self.session
        inputs = kernel.shape[0]
        label_width = len(str(inputs - 1))
        map_rows = max(height - (3 if bias is not None else 2), 1)
        cell = cell_width(kernel.shape[1], width - label_width - 1, s.palette)
        map_cols = max((width - label_width - 1) // cell, 1)
        key = (s.revision, self.source_step, what, s.kernel_name)
        self._heat_plan = (s.layer, map_rows, map_cols)
        grid = self.session.grids.get(key, kernel, map_rows, map_cols)
        bias_grid = None
        if bias is not None:
            bias_grid = self.session.grids.get((*key, "bias"), bias, 1, grid.values.shape[1])
        self.step_size = grid.block_size()
        row, col = s.cursor
        on_bias = bias is not None and row >= inputs
        here = grid.cell_of(min(row, inputs - 1), col)
        labels = [str(int(e)) for e in grid.row_edges[:-1]]
        lines = heat_lines(grid, s.palette, None if on_bias else here, labels, cell)
        self._cells = (grid, bias_grid, label_width + 1, len(lines), cell)
        if bias_grid is not None:
            bias_cell = bias_grid.cell_of(0, col) if on_bias else None
            lines += heat_lines(bias_grid, s.palette, bias_cell, ["b".rjust(label_width)], cell)
        scale = max(grid.scale, bias_grid.scale if bias_grid is not None else 0.0)
        note = legend(scale, s.palette, width)
        if grid.reduced:
            r, c = self.step_size
            extra = f"  cell {r}×{c}, RMS · shift+arrows: 1 weight"
            if note.cell_len + len(extra) <= width:
                note.append(extra, style="dim")
        lines.append(note)
        return lines

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self.folded:
            return
        self.focus()
        target = self._target(offset.x, offset.y - 1)
        if target is not None:
            self.app.call_later(self.app.run_action, f"cursor_to({target[0]}, {target[1]})")

    def _target(self, x: int, y: int) -> tuple[int, int] | None:
        """The (row, col) of the weight drawn at content (x, y) below the title."""
        s = self.session
        inputs, units = s.spec.inputs, s.spec.units
        if self._cells is None:  # numbers: a header of column numbers, then the rows
            left, cell = self._number_cells
            if x < left:
                return None
            col, row = (x - left) // (cell + 1), y - 1
        else:
            grid, bias_grid, left, map_rows, cell = self._cells
            cell_col = (x - left) // cell
            if cell_col < 0 or cell_col >= grid.values.shape[1]:
                return None
            col = int(grid.col_edges[cell_col])
            if y < map_rows:
                row = int(grid.row_edges[y])
            elif y == map_rows and bias_grid is not None:
                row = inputs
            else:
                return None
        if 0 <= row < s.cursor_rows() and 0 <= col < units:
            return row, col
        return None
