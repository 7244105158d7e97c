"""The pure drawing functions: numbers with signs, heat maps, legends, charts, key fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backprop_tui.core import EpochStats, LogEntry
from backprop_tui.core.records import EpochLog
from backprop_tui.tui.blocks import Block, GridCache, arrange
from backprop_tui.tui.chart import bucket, line_chart
from backprop_tui.tui.layout import BARS, compact_heights
from backprop_tui.tui.render import (
    LEVELS,
    Palette,
    downsample,
    fit,
    glyph,
    heat_lines,
    legend,
    level,
    num,
    number_lines,
    wrap,
)
from backprop_tui.tui.session import ValidationEpochs
from backprop_tui.tui.widgets.base import _segments
from backprop_tui.tui.widgets.keybar import chosen_keys
from backprop_tui.tui.widgets.log import entry_lines, going_on
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.style import Style
from rich.text import Span, Text

GLYPHS = Palette(glyphs=True)
COLOUR = Palette()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "+0.5000"),
        (-0.5, "-0.5000"),
        (0.0, "0"),
        (1234.5, "+1234"),
        (-0.0012345, "-0.001234"),
        (1.5e-5, "+1.500e-05"),
        (-2.5e7, "-2.500e+07"),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
    ],
)
def test_num_carries_sign_and_four_significant_digits(value: float, text: str) -> None:
    assert num(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_num_reads_back_close_to_the_value(value: float) -> None:
    text = num(value)
    assert len(text) <= 11  # +1.234e-100 at the very worst
    if value != 0:
        assert text[0] == ("+" if value > 0 else "-")
        assert math.isclose(float(text), value, rel_tol=1e-3)


def test_levels_are_symmetric_and_saturate() -> None:
    assert level(0.0, 1.0) == 0
    assert level(1.0, 1.0) == LEVELS
    assert level(-1.0, 1.0) == -LEVELS
    assert level(-0.5, 1.0) == -level(0.5, 1.0)
    assert level(5.0, 1.0) == LEVELS
    assert glyph(3) == "+3" and glyph(-7) == "-7" and glyph(0) == " 0"


def test_downsample_gives_each_block_its_signed_rms() -> None:
    array = np.zeros((100, 60))
    array[37, 41] = -9.0  # one exploding weight in a block of 10×10
    array[3, 2] = 4.0
    array[90:, :10] = 0.5  # a block that is uniformly positive
    grid = downsample(array, 10, 6)
    assert grid.values.shape == (10, 6)
    assert grid.block_size() == (10, 10)
    assert grid.values[grid.cell_of(37, 41)] == pytest.approx(-0.9)
    assert grid.values[grid.cell_of(3, 2)] == pytest.approx(0.4)
    assert grid.values[grid.cell_of(95, 5)] == pytest.approx(0.5)
    assert np.count_nonzero(grid.values) == 3
    assert (grid.scale, grid.peak) == (pytest.approx(0.9), 9.0)
    assert level(float(grid.values[grid.cell_of(37, 41)]), grid.scale) == -LEVELS  # brightest


def test_downsample_handles_partial_blocks() -> None:
    array = np.ones((7, 5))
    grid = downsample(array, 3, 2)
    assert grid.values.shape == (3, 2)
    assert np.allclose(grid.values, 1.0)  # the short last blocks are averaged over what they hold


def test_downsample_marks_blocks_holding_nan_or_inf() -> None:
    array = np.ones((40, 40))
    array[5, 5] = np.nan
    array[30, 30] = np.inf
    grid = downsample(array, 4, 4)
    assert math.isnan(grid.values[grid.cell_of(5, 5)])
    assert math.isnan(grid.values[grid.cell_of(30, 30)])
    assert grid.scale == 1.0  # the scale ignores what is not finite
    line = heat_lines(grid, GLYPHS)[0]
    assert "!!" in line.plain


def test_downsample_leaves_small_arrays_whole() -> None:
    grid = downsample(np.arange(8.0).reshape(2, 4), 10, 10)
    assert not grid.reduced
    assert grid.values.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_glyph_heat_map_reads_sign_and_magnitude_without_colour() -> None:
    grid = downsample(np.array([[-1.0, 0.0, 0.5, 1.0]]), 1, 4)
    (line,) = heat_lines(grid, GLYPHS, cursor=(0, 2))
    assert line.plain == "-9 0+5+9"
    assert not any(span.style and getattr(span.style, "bgcolor", None) for span in line.spans)


def test_colour_heat_map_marks_the_cursor_in_text_too() -> None:
    grid = downsample(np.array([[-1.0, 1.0]]), 1, 2)
    (line,) = heat_lines(grid, COLOUR, cursor=(0, 1))
    assert line.plain == "  []"


def test_number_lines_align_columns_with_labels() -> None:
    lines = number_lines(
        np.array([[1.0, -0.25], [0.0, 3.5]]), GLYPHS, row_labels=["a", "b"], col_labels=["0", "1"]
    )
    assert [line.plain for line in lines] == [
        "        0       1",
        "a  +1.000 -0.2500",
        "b       0  +3.500",
    ]


@pytest.mark.parametrize("width", [10, 20, 40, 80])
def test_legend_fits_its_width_and_names_both_ends(width: int) -> None:
    for palette in (GLYPHS, COLOUR):
        text = legend(0.25, palette, width)
        assert text.cell_len <= width
    assert "-0.250" in legend(0.25, COLOUR, 40).plain
    assert "+0.250" in legend(0.25, COLOUR, 40).plain


def test_fit_cuts_at_a_word_not_inside_a_number() -> None:
    assert fit("loss +0.123456 accuracy +0.75", 20) == "loss +0.123456…"
    assert fit("short", 10) == "short"


def test_bucket_averages_into_at_most_n_buckets() -> None:
    values = np.arange(100, dtype=float)
    out = bucket(values, 10)
    assert len(out) == 10
    assert out[0] == pytest.approx(4.5)
    assert bucket(values[:5], 10).tolist() == [0, 1, 2, 3, 4]


def test_line_chart_has_axes_and_fits() -> None:
    values = np.exp(-np.arange(500) / 50.0)
    lines = line_chart(values, 40, 8)
    assert len(lines) == 8
    assert all(line.cell_len <= 40 for line in lines)
    assert "log" in lines[1].plain  # spans four decades: log scale
    assert lines[-1].plain.strip().startswith("└1")
    assert lines[-1].plain.endswith("500 step")
    assert lines[0].plain.lstrip().startswith("+1.00┤")


def test_line_chart_of_nothing_says_so() -> None:
    assert line_chart([], 40, 8)[0].plain == "no history yet"


def test_arrange_uses_numbers_when_they_fit_and_heat_maps_when_not() -> None:
    small = [Block("z", np.ones((4, 3))), Block("a", -np.ones((4, 3)))]
    lines = arrange(small, GLYPHS, 80, 12, GridCache())
    assert "+1.00" in lines[2].plain and "-1.00" in lines[2].plain  # three digits: activations
    big = [Block("z", np.random.default_rng(0).normal(size=(32, 512)))]
    lines = arrange(big, GLYPHS, 60, 12, GridCache())
    assert len(lines) <= 12
    assert all(line.cell_len <= 60 for line in lines)
    assert "cell" in lines[0].plain  # summarised, not dumped
    assert "min" in lines[-1].plain


def test_grid_cache_returns_the_same_grid_for_the_same_key() -> None:
    cache = GridCache()
    array = np.ones((100, 100))
    first = cache.get(("step", 1), array, 10, 10)
    assert cache.get(("step", 1), array, 10, 10) is first
    assert cache.get(("step", 1), array, 5, 5) is not first
    assert cache.hits == 1


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_footer_keys_fit_and_always_offer_help(width: int) -> None:
    keys = chosen_keys(width)
    actions = [k.action for k in keys]
    assert "help" in actions and "quit" in actions
    assert (
        sum(len(k.display) + len(k.label) + 2 + (2 if width >= 120 else 0) for k in keys) <= width
    )


def test_compact_heights_fill_the_screen() -> None:
    panes = ["network", "activations", "chart", "log", "gradients", "chain", "updates"]
    rows = compact_heights(panes, "gradients", 24, {"gradients": 6})
    assert rows["gradients"] == 6
    assert rows["network"] == 1
    assert sum(rows.values()) == 24 - BARS


def test_the_validation_epochs_are_read_once_each_and_again_after_a_cut() -> None:
    """The chart and the log read a run's epochs at every redraw; a long run (xor ends
    an epoch a step) keeps them as columns, so each is read from it once."""

    class Counted(EpochLog):
        reads = 0

        def _item(self, i: int) -> EpochStats:
            Counted.reads += 1
            return super()._item(i)

    log, seen = Counted(), ValidationEpochs()
    for i in range(100):
        log.append(EpochStats(i, 1.0, {}, 0.5 if i % 2 else None))
    assert [e.epoch for e in seen.sync(log)][:3] == [1, 3, 5]
    first = Counted.reads
    for _ in range(10):
        assert len(seen.sync(log)) == 50
    assert Counted.reads - first <= 10  # at most the last epoch, to see it is still the same
    del log[40:]  # going back
    log.append(EpochStats(40, 2.0, {}, 0.25))
    got = seen.sync(log)
    assert len(got) == 21 and got[-1].val_loss == 0.25


SPAN_STYLES = st.sampled_from(["bold", "dim", Style(color="red"), Style(bgcolor="#102030"), ""])


@given(
    st.text("ab ▀●│", max_size=30),
    st.sampled_from(["", "italic", Style(color="blue")]),
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), SPAN_STYLES), max_size=6),
    st.booleans(),
)
def test_a_line_draws_as_rich_draws_it(
    plain: str, base: str | Style, cuts: list[tuple[int, int, str | Style]], ordered: bool
) -> None:
    """A pane's line goes to the screen as the segments ``Text.render`` gives (the base
    style kept where a line has no spans), found faster where the spans follow one
    another, as a heat map's cells do."""
    spans = [Span(min(a, b), max(a, b), style) for a, b, style in cuts if max(a, b) <= len(plain)]
    if ordered:
        spans.sort(key=lambda span: span.start)
    text = Text(plain, style=base, spans=spans)
    console = Console()
    got = [(s.text, s.style) for s in _segments(text, console)]
    if spans or not base:
        expected = [(s.text, s.style) for s in text.render(console, end="")]
    else:
        expected = [(plain, console.get_style(base))]
    assert got == expected


def test_a_log_line_going_on_is_cut_between_figures_never_inside_one() -> None:
    line = Text("                accuracy 1  val_loss 0.01301  val_accuracy 0.98")
    for width in range(26, 70):  # room for the first word and " …"
        shown = going_on(line, width).plain
        assert shown.endswith("…") and cell_len(shown) <= width, (width, shown)
        kept = shown.removesuffix("…").rstrip()
        assert line.plain.startswith(kept)
        # what is kept ends with a whole figure: the full line goes on with a space there
        assert line.plain[len(kept) : len(kept) + 1] in ("", " "), (width, shown)
    assert going_on(line, 36).plain == "                accuracy 1 …"
    # no whole word fits: only then is one cut
    assert going_on(line, 24).plain == "                accurac…"
    assert going_on(Text("abcdefghijklmnopqrstuvwxyz"), 10).plain == "abcdefghi…"


def test_a_log_entry_wraps_between_figures_keeping_each_name_with_its_number() -> None:
    text = "epoch 10 done: loss 0.04951  accuracy 0.9969  val_loss 0.1291  val_accuracy 0.9675"
    figures = ["loss 0.04951", "accuracy 0.9969", "val_loss 0.1291", "val_accuracy 0.9675"]
    for width in range(36, 100):
        lines = [line.plain for line in entry_lines(LogEntry(1000, "info", text), width)]
        assert all(cell_len(line) <= width for line in lines), (width, lines)
        assert " ".join(" ".join(lines).split()) == " ".join((" 1000 · info " + text).split())
        for figure in figures:  # each fits beside the indent of 16 columns here
            assert any(figure in line for line in lines), (width, figure, lines)


def test_wrap_keeps_each_setting_of_a_rule_on_one_line() -> None:
    rule = "new = w − lr·g / √(ms + ε)   (lr = 0.01, ρ = 0.9, ε = 1e-07)"
    settings = ["(lr = 0.01,", "ρ = 0.9,", "ε = 1e-07)"]
    for width in range(12, 70):
        lines = [line.plain for line in wrap(rule, width)]
        assert all(len(line) <= width for line in lines), (width, lines)
        assert " ".join(lines).split() == rule.split()
        for setting in settings:
            assert any(setting in line for line in lines), (width, setting, lines)
    # too narrow for a setting whole: it breaks at its spaces as any prose does
    assert [line.plain for line in wrap("(lr = 0.01,", 6)] == ["(lr =", "0.01,"]


def test_wrap_never_breaks_inside_an_index() -> None:
    formula = "dL/dw[0,2,0,1] = Σ_b Σ_(y,x) a_prev[b, y·1+0, x·1+2, 0] · dL/dz[b,y,x,1]"
    for width in range(28, 72):
        lines = [line.plain for line in wrap(formula, width)]
        assert " ".join(lines).split() == formula.split()
        assert any("a_prev[b, y·1+0, x·1+2, 0]" in line for line in lines), lines
        assert all(line.count("[") == line.count("]") for line in lines), lines


def test_a_chart_one_line_tall_draws_its_line_after_its_range() -> None:
    values = [2.0, 1.5, 1.2, 1.0, 0.9, 0.5]
    (line,) = line_chart(values, 40, 1)
    label, plot = line.plain.split("┤")
    assert label.strip() == "+0.500–+2.00"
    assert len(line.plain) <= 40 and plot.strip()  # dots drawn, not an empty line
    assert all(ch == " " or 0x2800 <= ord(ch) <= 0x28FF for ch in plot)
