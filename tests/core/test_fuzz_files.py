"""Mutated scenario files and traces end in a clean refusal or a run, never a traceback.

Hypothesis mutates the bundled scenarios as a hurried editor (or a hostile
sender) would — lines deleted, duplicated, swapped, re-indented or cut, stray
characters (controls among them) inserted, values swapped for hostile ones,
keys misspelled — and each mutant must load (then take a few steps) or raise
:class:`ScenarioError`. Recorded traces are mutated the same way, in their
JSON header and in their bytes, and must load or raise :class:`TraceError`.
Derandomized, so CI sees the same mutants every run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, ScenarioError, load_scenario
from backprop_tui.core.spec.scenario import bundled_dir
from backprop_tui.core.traces.recording import TraceError, TraceRecorder, load_trace, save_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# glyphs and glyphs_cnn (28×28) draw 4,000 images per load; glyphs8 runs the same
# generator in a blink.
SOURCES = {
    path.stem: path.read_text()
    for path in sorted(bundled_dir().glob("*.yaml"))
    if path.stem not in ("glyphs", "glyphs_cnn")
}
HOSTILE_VALUES = (
    "{}",
    "[]",
    "null",
    "-1",
    "0",
    "1e308",
    "-1e308",
    ".nan",
    ".inf",
    "true",
    "[1, [2, 3]]",
    "{a: {b: {}}}",
    '"\\e]2;PWNED\\a"',
    '"\\0"',
    "x" * 300,
    "99999999",
    "2024-13-45",
    "0x10",
    "!!binary aGVsbG8=",
    "!!python/object/apply:os.system ['true']",
    "&a [*a]",
    "*nowhere",
    "'",
    "|",
)
STRAY = ("\x1b", "\x00", "\x07", "\t", ":", "-", "{", "}", "[", "]", ",", "#", "&", "*", "!", "%", "@", "`", '"', "'", "\\", "\u202e", "\x85", "\ufeff")  # fmt: skip

MUTATIONS = ("delete", "duplicate", "swap", "indent", "dedent", "cut", "stray", "value", "key")


@st.composite
def mutants(draw: st.DrawFn) -> str:
    text = SOURCES[draw(st.sampled_from(sorted(SOURCES)))]
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(MUTATIONS))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = "  " + lines[i]
        elif kind == "dedent":
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i].lstrip()
        elif kind == "cut":
            text = text[: draw(st.integers(0, len(text)))]
            continue
        elif kind == "stray":
            at = draw(st.integers(0, len(text)))
            stray = draw(st.sampled_from(STRAY) | st.characters(max_codepoint=0x2FF))
            text = text[:at] + stray + text[at:]
            continue
        elif kind == "value" and ": " in lines[i]:
            head = lines[i][: lines[i].index(": ") + 2]
            lines[i] = head + draw(st.sampled_from(HOSTILE_VALUES))
        elif kind == "key" and ":" in lines[i]:
            at = draw(st.integers(0, max(0, lines[i].index(":") - 1)))
            letter = draw(st.sampled_from("aeiouxz_ "))
            lines[i] = lines[i][:at] + letter + lines[i][at + 1 :]
        text = "\n".join(lines)
    return text


def _train_a_little(path: Path) -> None:
    try:
        scenario = load_scenario(path)
    except ScenarioError as err:
        assert "\n" not in str(err) and "\x1b" not in str(err)
        return
    if scenario.param_count > 100_000 or len(scenario.data.x_train) > 100_000:
        return  # a mutant that asks for a big network is fine, but not here
    dbg = Debugger(scenario)
    for size in ("phase",) * 6 + ("batch",):
        if dbg.finished:
            break
        dbg.step(size)


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=mutants())
def test_a_mutated_scenario_loads_and_runs_or_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mutant.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _train_a_little(path)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=2000))
def test_random_bytes_are_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.getbasetemp() / "bytes.yaml"
    path.write_bytes(data)
    _train_a_little(path)


CSV_SCENARIO = """data: {file: d.csv, target: label}
model:
  inputs: 2
  layers: [{units: 3, activation: softmax}]
loss: sparse_categorical_crossentropy
"""
CSV_ALPHABET = "0123456789.,;\t\r\n\"' -eEabclnx\x1b\x00\u202e"
NUMBER_CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.integers(-5, 5).map(str),
)
CELLS = st.one_of(
    NUMBER_CELLS,
    st.sampled_from(("cat", "dog", "emu", "", " 1 ", "1,5", "nan", "inf", "\x1b[2J")),
    st.text(CSV_ALPHABET, max_size=8),
)


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    header = draw(st.sampled_from(("a,b,label", ",a,label", "a;b;label", "a\tb\tlabel", "label")))
    odd = draw(st.integers(0, 3)) == 0  # now and then a row or a file not as it should be
    sep = draw(st.sampled_from((",", ";", "\t"))) if odd else None
    words = draw(st.booleans())
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        width = draw(st.sampled_from((3, 2, 4))) if odd else 3
        cells = [draw(CELLS if odd else NUMBER_CELLS) for _ in range(width)]
        if words and not odd:
            cells[-1] = draw(st.sampled_from(("cat", "dog", "emu", "\x1b]2;x\x07")))
        elif not odd:
            cells[-1] = draw(st.sampled_from(("0", "1", "2")))
        rows.append(
            (sep or ("," if "," in header else header[1] if len(header) > 1 else ",")).join(cells)
        )
    ending = draw(st.sampled_from(("\n", "\r\n", "\r")))
    text = ending.join([header, *rows])
    if odd and draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(CSV_ALPHABET, max_size=4)) + text[at:]
    return text


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=csv_files())
def test_a_mangled_csv_loads_or_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "d.csv").write_bytes(text.encode("utf-8"))
    (tmp_path / "s.yaml").write_text(CSV_SCENARIO)
    _train_a_little(tmp_path / "s.yaml")


# ------------------------------------------------------------------------ traces
@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dbg = Debugger(load_scenario("xor"))
    recorder = TraceRecorder(dbg, 1 << 20)
    dbg.listeners.append(lambda _run: recorder.observe(dbg))
    for _ in range(6):
        dbg.step("batch")
    path = tmp_path_factory.mktemp("trace") / "good.npz"
    save_trace(path, recorder.trace())
    return path


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _paths(value, (*prefix, i))
    return out


JSON_HOSTILE = (None, True, -1, 0, 10**12, 1.5e308, "x", "\x1b]2;x\x07", [], {}, [1, "a"], {"a": 1})


def _rewrite_header(good: Path, folder: Path, change: Any) -> Path:
    path = folder / "mutant.npz"
    path.write_bytes(good.read_bytes())
    with np.load(path) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    header = json.loads(arrays["header"].tobytes())
    text = change(header)
    arrays["header"] = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


def _load_or_refuse(path: Path) -> None:
    try:
        load_trace(path)
    except TraceError as err:
        assert "\n" not in str(err) and "\x1b" not in str(err)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_trace_with_a_mutated_header_loads_or_is_refused(
    tmp_path: Path, recorded: Path, data: st.DataObject
) -> None:
    def change(header: dict[str, Any]) -> str:
        for _ in range(data.draw(st.integers(1, 3))):
            where = data.draw(st.sampled_from(_paths(header)))
            parent = header
            for key in where[:-1]:
                parent = parent[key]
            kind = data.draw(st.sampled_from(("delete", "retype", "duplicate")))
            if kind == "delete":
                del parent[where[-1]]
            elif kind == "retype":
                parent[where[-1]] = data.draw(st.sampled_from(JSON_HOSTILE))
            elif isinstance(parent, list):
                parent.append(parent[where[-1]])
            if not _paths(header):
                break
        text = json.dumps(header)
        if data.draw(st.booleans()):  # and sometimes a stray character in the JSON text itself
            at = data.draw(st.integers(0, len(text)))
            text = text[:at] + data.draw(st.characters(max_codepoint=0x10FFFF)) + text[at:]
        return text

    _load_or_refuse(_rewrite_header(recorded, tmp_path, change))


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_trace_with_damaged_bytes_or_members_loads_or_is_refused(
    tmp_path: Path, recorded: Path, data: st.DataObject
) -> None:
    path = tmp_path / "mutant.npz"
    kind = data.draw(st.sampled_from(("flip", "cut", "insert", "members")))
    raw = bytearray(recorded.read_bytes())
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif kind == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    path.write_bytes(bytes(raw))
    if kind == "members":
        with np.load(path) as loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        name = data.draw(st.sampled_from(sorted(arrays)))
        action = data.draw(st.sampled_from(("drop", "retype", "reshape", "swap")))
        if action == "drop":
            del arrays[name]
        elif action == "retype":
            with np.errstate(invalid="ignore"):  # NaN to whole numbers: whatever comes out
                kind = data.draw(st.sampled_from(("U3", "i1", "?", "c16")))
                arrays[name] = arrays[name].astype(kind)
        elif action == "reshape":
            arrays[name] = arrays[name].reshape(-1)[:-1] if arrays[name].size else np.zeros(3)
        else:
            other = data.draw(st.sampled_from(sorted(arrays)))
            arrays[name], arrays[other] = arrays[other], arrays[name]
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    _load_or_refuse(path)
