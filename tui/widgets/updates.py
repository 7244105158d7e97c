"""The update table: value, gradient, the optimizer's terms, change and new value per weight.

Only the visible rows are asked of the engine, so the cost does not grow with the
layer: small layers list every weight in index order, big ones the weights that
change most (``o`` switches to index order, which scrolls through all of them).
"""

from __future__ import annotations

from typing import Any

from backprop_tui.core.optimizers import rule_text, term_names
from backprop_tui.core.records import UpdateRow
from rich.text import Text
from textual.binding import Binding

from ..render import count, fit, num
from .base import Pane

SMALL = 64  # layers with at most this many numbers list them all in index order
TOP = 200  # how far the |change| ranking scrolls


class UpdatePane(Pane):
    TITLE = "update"
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("up", "scroll_rows(-1)", "scroll up", show=False),
        Binding("down", "scroll_rows(1)", "scroll down", show=False),
        Binding("pageup", "scroll_rows(-10)", "page up", show=False),
        Binding("pagedown", "scroll_rows(10)", "page down", show=False),
        Binding("home", "scroll_rows(-1000000000)", "top", show=False),
        Binding("o", "toggle_order", "order", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.row_offset = 0
        self.by_change: bool | None = None  # None: decided by the layer's size
        self._total = 0
        self._page = 1
        self._rows_key: tuple[Any, ...] = ()
        self._rows: list[UpdateRow] = []

    def action_scroll_rows(self, delta: int) -> None:
        self.row_offset = max(0, min(self.row_offset + delta, max(self._total - self._page, 0)))
        self.redraw()

    def action_toggle_order(self) -> None:
        self.by_change = not self._ranked()
        self.row_offset = 0
        self.redraw()

    def _ranked(self) -> bool:
        if self.by_change is not None:
            return self.by_change
        return self.session.spec.param_count > SMALL

    def summary(self, width: int) -> Text:
        s = self.session
        state = self._state()
        rows = self._rows_for(s.kernel_name, 0, 1, ranked=True) if state else []
        if not rows:
            return Text(fit(f"{s.spec.name}: {state or 'after the backward pass'}", width))
        r = rows[0]
        text = f"{state}: biggest {r.param}{list(r.index)} {num(r.value)} → {num(r.new_value)}"
        return Text(fit(text, width), no_wrap=True)

    def _state(self) -> str:
        dbg = self.session.dbg
        if dbg.pending_update() is not None:
            return "pending"
        if dbg.record_of("update") is not None and dbg.phase in ("update", "input"):
            return f"applied in step {dbg.step_index}"
        return ""

    def _rows_for(self, param: str, offset: int, limit: int, ranked: bool) -> list[UpdateRow]:
        dbg = self.session.dbg
        if ranked:
            rows: list[UpdateRow] = dbg.update_rows(param, top_k=offset + limit)
            return rows[offset:]
        result: list[UpdateRow] = dbg.update_rows(param, offset=offset, limit=limit)
        return result

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        spec = s.dbg.scenario.optimizer
        rule = Text(fit(rule_text(spec), width), style="dim", no_wrap=True)
        state = self._state()
        if not state:
            text = "The update appears once the backward pass is done (n: finish this step)."
            return [rule, Text(fit(text, width), style="italic", no_wrap=True)]
        ranked = self._ranked()
        params = [p for p in (s.kernel_name, s.bias_name) if p is not None]
        sizes = [int(s.dbg.params[p].size) for p in params]
        page = max(height - 3, 1)
        self._page = page
        self._total = min(sum(sizes), TOP) if ranked else sum(sizes)
        self.row_offset = min(self.row_offset, max(self._total - page, 0))
        key = (s.revision, s.dbg.step_index, state, tuple(params), self.row_offset, page, ranked)
        if key != self._rows_key:
            self._rows_key, self._rows = key, self._visible(params, sizes, ranked, page)
        rows = self._rows
        order = f"top {min(TOP, sum(sizes))} by |change|" if ranked else "index order"
        title = f"{state} · {s.spec.name} · {count(sum(sizes))} numbers · {order}"
        title += f" · rows {self.row_offset + 1}–{self.row_offset + len(rows)}"
        lines = [Text(fit(title, width), style="bold", no_wrap=True), rule]
        return lines + self._table(rows, term_names(spec), width)

    def _visible(
        self, params: list[str], sizes: list[int], ranked: bool, page: int
    ) -> list[UpdateRow]:
        if ranked:  # one ranking over kernel and bias together
            pool: list[UpdateRow] = []
            for p in params:
                pool += self._rows_for(p, 0, self.row_offset + page, ranked=True)
            pool.sort(key=lambda r: -abs(r.change))
            return pool[self.row_offset : self.row_offset + page]
        rows: list[UpdateRow] = []
        start = self.row_offset
        for p, size in zip(params, sizes, strict=True):
            if start < size and len(rows) < page:
                rows += self._rows_for(p, start, page - len(rows), ranked=False)
            start = max(start - size, 0)
        return rows

    def _table(self, rows: list[UpdateRow], terms: tuple[str, ...], width: int) -> list[Text]:
        cursor = self.session.cursor_param()
        headers = ["param", "index", "value", "gradient", *terms, "change", "new value"]
        table = [
            [
                r.param.split(".")[-1],
                ",".join(str(i) for i in r.index),
                num(r.value, 6),
                num(r.gradient, 6),
                *(num(r.terms.get(t, float("nan")), 6) for t in terms),
                num(r.change, 6),
                num(r.new_value, 6),
            ]
            for r in rows
        ]
        widths = [max([len(h)] + [len(row[k]) for row in table]) for k, h in enumerate(headers)]
        keep = list(range(len(headers)))
        # Drop the optimizer's later terms first, then the parameter's name.
        droppable = [4 + k for k in reversed(range(1, len(terms)))] + [0] + ([4] if terms else [])
        while sum(widths[k] + 2 for k in keep) > width and droppable:
            victim = droppable.pop(0)
            if victim in keep:
                keep.remove(victim)
        lines = [self._line([headers[k].rjust(widths[k]) for k in keep], "dim")]
        for r, row in zip(rows, table, strict=True):
            style = "reverse" if (r.param, r.index) == cursor else ""
            lines.append(self._line([row[k].rjust(widths[k]) for k in keep], style))
        return lines

    @staticmethod
    def _line(cells: list[str], style: str) -> Text:
        return Text("  ".join(cells), style=style, no_wrap=True)
