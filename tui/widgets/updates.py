"""The update table: value, gradient, the optimizer's terms, change and new value per weight.

Only the visible rows are asked of the engine, so the cost does not grow with the
layer: small layers list every weight in index order, big ones the weights that
change most (``o`` switches to index order, which scrolls through all of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from backprop_tui.core import (
    LayerView,
    RunReading,
    RunSnapshot,
    UpdateArrays,
    UpdateRow,
    top_indices,
)
from rich.text import Text
from textual.binding import Binding

from ..render import count, fit, num, wrap
from ..session import RECORDED
from .base import Pane

SMALL = 64  # layers with at most this many numbers list them all in index order
TOP = 200  # how far the |change| ranking scrolls


def _rank(sources: list[UpdateArrays]) -> list[tuple[int, int]]:
    """(source, flat index) of the TOP biggest |change| over ``sources``, biggest first."""
    pool = []
    for n, src in enumerate(sources):
        flat_change = np.abs(src.change.reshape(-1))
        pool += [(float(flat_change[i]), n, int(i)) for i in top_indices(src.change, TOP)]
    pool.sort(key=lambda item: -item[0])
    return [(n, i) for _, n, i in pool[:TOP]]


class UpdatePane(Pane):
    TITLE = "update"
    PREPARES = True
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
        self._rank_key: tuple[Any, ...] = ()
        self._rank: list[tuple[int, int]] = []

    def action_scroll_rows(self, delta: int) -> None:
        self.row_offset = max(0, min(self.row_offset + delta, max(self._total - self._page, 0)))
        self.redraw()

    def action_toggle_order(self) -> None:
        self.by_change = not self._ranked()
        self.row_offset = 0
        self.redraw()

    def _ranked(self, spec: LayerView | None = None) -> bool:
        if self.by_change is not None:
            return self.by_change
        return bool((spec or self.session.spec).param_count > SMALL)

    def _sources(
        self, view: RunReading | None = None, layer: int | None = None
    ) -> tuple[str, list[UpdateArrays]]:
        """("pending" / "applied in step N" / "", the selected layer's parameters' arrays)."""
        s = self.session
        view = view if view is not None else s.view
        spec = view.layers[s.layer if layer is None else layer]
        found = []
        state = ""
        for param in (spec.kernel or f"{spec.name}.kernel", spec.bias):
            if param is None:
                continue
            result = view.update_arrays(param)
            if result is not None:
                kind, arrays = result
                state = "pending" if kind == "pending" else f"applied in step {view.step_index}"
                found.append(arrays)
        return state, found

    def _ranking(self, key: tuple[Any, ...], sources: list[UpdateArrays]) -> list[tuple[int, int]]:
        """(source, flat index) of the biggest |change| over all the layer's parameters."""
        if key != self._rank_key:
            view = self.session.view
            if isinstance(view, RunSnapshot):  # worked out once, by the worker if it could
                rank = view.derived(("update rank", *key), lambda: _rank(sources))
            else:
                rank = _rank(sources)
            self._rank_key, self._rank = key, rank
        return self._rank

    def prepare(self, snapshot: RunSnapshot) -> None:
        """On the worker's thread, for a snapshot the screen will draw in full: the
        ranking of the selected layer's changes and the optimizer terms of its rows."""
        layer = self.session.layer
        if self.folded or not self.display:
            return
        state, sources = self._sources(snapshot, layer)
        if not sources:
            return
        if self._ranked(snapshot.layers[layer]):
            key = (self.session.revision, snapshot.step_index, state, layer)
            snapshot.derived(("update rank", *key), lambda: _rank(sources))
        for source in sources:  # Adam's m̂ and v̂ are worked out on first read
            for term in source.terms:
                source.terms[term]

    def summary(self, width: int) -> Text:
        s = self.session
        state, sources = self._sources()
        if not sources:
            return Text(fit(f"{s.spec.name}: after the backward pass", width), no_wrap=True)
        key = (s.revision, s.view.step_index, state, s.layer)
        n, flat = self._ranking(key, sources)[0]
        r = sources[n].row(flat)
        text = f"{state}: biggest {r.param}{list(r.index)} {num(r.value)} → {num(r.new_value)}"
        return Text(fit(text, width), no_wrap=True)

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        rule = Text(fit(s.view.update_rule, width), style="dim", no_wrap=True)
        state, sources = self._sources()
        if not sources:
            text = "The update appears once the backward pass is done (n: finish this step)."
            if s.read_only:
                text = RECORDED.format(what="each step's update")
            message = wrap(text, width, "italic")
            wrapped = wrap(s.view.update_rule, width, "dim")
            fits = len(wrapped) + len(message) <= height  # the rule whole where rows allow
            return [*(wrapped if fits else [rule]), *message]
        ranked = self._ranked()
        total = sum(src.size for src in sources)
        rules = [rule]
        wrapped = wrap(s.view.update_rule, width, "dim")
        if len(wrapped) > 1 and height >= 10:  # a long rule (Adam's) whole, where rows allow
            rules = wrapped
        if s.spec.penalties and height > 6:  # where the gradient's penalty column comes from
            parts = ", ".join(
                f"{name.split('.')[-1]}: {formula}"
                for name, (_, formula) in s.spec.penalties.items()
            )
            rules.append(Text(fit(f"g = data part + penalty ({parts})", width), style="dim"))
        page = max(height - 2 - len(rules), 1)
        self._page = page
        self._total = min(total, TOP) if ranked else total
        self.row_offset = min(self.row_offset, max(self._total - page, 0))
        if ranked:
            key = (s.revision, s.view.step_index, state, s.layer)
            picked = self._ranking(key, sources)[self.row_offset : self.row_offset + page]
            rows = [sources[n].row(flat) for n, flat in picked]
        else:
            rows = self._in_order(sources, page)
        order = f"top {min(TOP, total)} by |change|" if ranked else "index order"
        shown = f"rows {self.row_offset + 1}–{self.row_offset + len(rows)}"
        forms = (  # the longest that fits: the count goes first, then the layer's name
            f"{state} · {s.spec.name} · {count(total)} numbers · {order} · {shown}",
            f"{state} · {s.spec.name} · {order} · {shown}",
            f"{state} · {order} · {shown}",
        )
        title = next((form for form in forms if len(form) <= width), forms[-1])
        lines = [Text(fit(title, width), style="bold", no_wrap=True), *rules]
        terms = s.view.term_names
        if s.spec.penalties:  # the gradient is data part + this; the penalty column says how much
            terms = ("penalty", *terms)  # first: the optimizer's terms give way before it
        return lines + self._table(rows, terms, width)

    def _in_order(self, sources: list[UpdateArrays], page: int) -> list[UpdateRow]:
        rows: list[UpdateRow] = []
        start = self.row_offset
        for src in sources:  # kernel then bias, as one list
            first = max(start, 0)
            stop = min(src.size, first + page - len(rows))
            rows += [src.row(flat) for flat in range(first, stop)]
            start -= src.size
        return rows

    def _table(self, rows: list[UpdateRow], terms: tuple[str, ...], width: int) -> list[Text]:
        cursor = self.session.cursor_param()
        headers = ["param", "index", "value", "gradient", *terms, "change", "new value"]
        term_digits = 6 if len(terms) <= 1 else 4  # Adam's four terms must fit beside the rest
        table = [
            [
                r.param.split(".")[-1],
                ",".join(str(i) for i in r.index),
                num(r.value, 6),
                num(r.gradient, 6),
                *(num(r.terms[t], term_digits) if t in r.terms else "—" for t in terms),
                num(r.change, 6),
                num(r.new_value, 6),
            ]
            for r in rows
        ]
        widths = [max([len(h)] + [len(row[k]) for row in table]) for k, h in enumerate(headers)]
        keep = list(range(len(headers)))

        def too_wide() -> bool:
            return sum(widths[k] for k in keep) + 2 * (len(keep) - 1) > width

        # The optimizer's later terms give way first; the parameter's name stays, so a
        # bias row is never taken for a kernel row: it shrinks to its initial (k, b).
        droppable = [4 + k for k in reversed(range(1, len(terms)))]
        while too_wide() and droppable:
            keep.remove(droppable.pop(0))
        names = [row[0] for row in table]
        if too_wide():
            headers[0] = "p"
            for row in table:
                row[0] = row[0][:1]
            widths[0] = 1
        if too_wide() and terms:
            keep.remove(4)
            full = max([5] + [len(name) for name in names])
            widths[0], saved = full, widths[0]
            if too_wide():  # the names do not fit even without the term
                widths[0] = saved
            else:
                headers[0] = "param"
                for row, name in zip(table, names, strict=True):
                    row[0] = name
        lines = [self._line([headers[k].rjust(widths[k]) for k in keep], "dim")]
        for r, row in zip(rows, table, strict=True):
            style = "reverse" if (r.param, r.index) == cursor else ""
            lines.append(self._line([row[k].rjust(widths[k]) for k in keep], style))
        return lines

    @staticmethod
    def _line(cells: list[str], style: str) -> Text:
        return Text("  ".join(cells), style=style, no_wrap=True)
