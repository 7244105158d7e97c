"""Files from others never reach the terminal as control sequences, nor exhaust memory.

A scenario's YAML double-quoted strings carry ESC and BEL; a trace's header and
log are JSON that anyone can edit. Whatever text comes from them is shown with
its control characters made visible, by every command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import load_scenario
from backprop_tui.core.safetext import clip, is_visible, quote, visible
from backprop_tui.core.spec.arrayfile import MB
from backprop_tui.core.traces.recording import TraceError, load_trace
from backprop_tui.tui.cli import main
from click.testing import CliRunner, Result

# OSC 2 sets the terminal's title, OSC 52 writes its clipboard, CSI 2J clears the screen.
NAME = r"x\e]2;PWNED\a\e]52;c;cHduZWQ=\aor"
DESCRIPTION = r"Looks harmless.\e[2J\e[31m Then red.\x9b1m \u202e"
SCENARIO = f"""name: "{NAME}"
description: "{DESCRIPTION}"
seed: 0
data:
  file: birds.csv
  target: "kind"
model:
  inputs: 2
  layers:
    - {{name: hidden, units: 4, activation: tanh}}
    - {{name: out, units: 3, activation: softmax}}
loss: sparse_categorical_crossentropy
optimizer: {{name: sgd, learning_rate: 0.5}}
metrics: [accuracy]
training: {{epochs: 2, batch_size: 4}}
"""
BIRDS = (
    "a,b,kind\n0,0,robin\n0,1,\x1b]2;wren\x07\n1,0,crow\n1,1,robin\n0.5,0.5,crow\n0.2,0.9,robin\n"
)
CONTROL = ("\x1b", "\x07", "\x9b", "\u202e")


def _files(folder: Path) -> Path:
    (folder / "birds.csv").write_text(BIRDS)
    path = folder / "hostile.yaml"
    path.write_text(SCENARIO)
    return path


def _clean(result: Result) -> None:
    for stream in (result.stdout, result.stderr):
        for char in CONTROL:
            assert char not in stream, f"{char!r} reached the terminal: {stream[:300]!r}"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ------------------------------------------------------------------------ safetext
def test_control_characters_are_made_visible() -> None:
    assert visible("a\x1b]2;t\x07b") == "a␛]2;t␇b"
    assert visible("tab\tand\nline") == "tab␉and␊line"
    assert visible("one\ntwo", newlines=True) == "one\ntwo"
    assert visible("\x7f\x9b\u202e") == "␡\\x9b\\u202e"
    assert visible("plain ünïcode → ok") == "plain ünïcode → ok"
    assert is_visible(visible("\x00\x1f\x85"))
    assert quote("x" * 100) == "'" + "x" * 40 + "…'"
    assert quote("\x1b") == "'␛'" and quote(3) == "3"
    assert clip("\x1b" * 100, 5) == "␛␛␛␛␛…"


# ------------------------------------------------------------------------ scenarios
def test_loading_makes_every_text_visible(tmp_path: Path) -> None:
    scenario = load_scenario(_files(tmp_path))
    assert scenario.name == "x␛]2;PWNED␇␛]52;c;cHduZWQ=␇or"
    assert scenario.description.startswith("Looks harmless.␛[2J␛[31m Then red.")
    assert scenario.data.class_names == ("␛]2;wren␇", "crow", "robin")  # sorted as written
    for text in (scenario.name, scenario.description, *scenario.data.class_names):
        assert is_visible(text)


def test_every_command_keeps_control_sequences_off_the_terminal(tmp_path: Path) -> None:
    path = str(_files(tmp_path))
    trace = str(tmp_path / "run.npz")
    checked = _invoke("check", path)
    assert checked.exit_code == 0 and "PWNED" in checked.stdout
    assert "classes   ␛]2;wren␇, crow, robin (ids 0–2)" in checked.stdout
    ran = _invoke("run", path, "--steps", "3", "--save", trace)
    assert ran.exit_code == 0 and "x␛]2;PWNED" in ran.stderr  # the progress line
    assert "classes ␛]2;wren␇, crow, robin" in ran.stdout
    as_json = _invoke("run", path, "--steps", "3", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["classes"] == ["␛]2;wren␇", "crow", "robin"]
    summary = _invoke("replay", trace, "--summary")
    assert summary.exit_code == 0 and "PWNED" in summary.stdout
    listed = _invoke("gradcheck", path)
    for result in (checked, ran, as_json, summary, listed):
        _clean(result)


def test_errors_quoting_the_file_keep_control_sequences_off_the_terminal(tmp_path: Path) -> None:
    _files(tmp_path)
    bad = tmp_path / "bad.yaml"
    cases = [
        SCENARIO.replace("seed: 0", '"\\e]2;key\\a": 0'),  # an unknown key
        SCENARIO.replace("units: 4,", 'units: "\\e[2J",'),  # a value of the wrong type
        SCENARIO.replace("activation: tanh", 'activation: "\\e]52;c;x\\a"'),
        SCENARIO.replace('"kind"', '"\\e[31mkind"'),  # a column not in the file
        SCENARIO.replace("name: hidden", 'name: "h\\e[2J"'),  # a layer name
        SCENARIO.replace("seed: 0", "seed: 0\nbreakpoints: ['loss < 1 \\e]2;x\\a']"),
        SCENARIO.replace("seed: 0", "seed: 0\n\x1b]2;raw\x07"),  # raw, not escaped
        SCENARIO.replace("birds.csv", "\\e]2;file\\a.csv"),
    ]
    for text in cases:
        bad.write_text(text)
        result = _invoke("check", str(bad))
        assert result.exit_code == 2, result.stdout + result.stderr
        assert result.stderr.startswith("backprop-tui: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
        _clean(result)
    (tmp_path / "birds.csv").write_text("a,b,kind\n0,\x1b]2;cell\x07,robin\n")
    result = _invoke("check", str(tmp_path / "hostile.yaml"))
    assert result.exit_code == 2 and "␛]2;cell␇" in result.stderr
    _clean(result)


def test_paths_that_are_no_scenario_are_refused_in_one_line(tmp_path: Path) -> None:
    for path in ("a" * 5000, "/dev/zero", str(tmp_path)):
        result = _invoke("check", path)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (17 * MB))
    assert "larger than 16 MiB" in _invoke("check", str(big)).stderr


# ------------------------------------------------------------------------ traces
def _rewrite(path: Path, change: Any) -> None:
    with np.load(path) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    header = json.loads(arrays["header"].tobytes())
    change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def _recorded(folder: Path) -> Path:
    trace = folder / "run.npz"
    result = _invoke("run", "xor", "--steps", "5", "--save", str(trace))
    assert result.exit_code == 0
    return trace


def test_a_trace_edited_to_hold_control_sequences_shows_them_visible(tmp_path: Path) -> None:
    trace = _recorded(tmp_path)

    def poison(header: dict[str, Any]) -> None:
        header["scenario"]["name"] = "\x1b]2;PWNED\x07"
        header["scenario"]["description"] = "\x1b[2J"
        header["backend"]["device"] = "cpu\x1b]52;c;eA==\x07"
        header["stopped"] = "\x1b[31mstopped"
        header["log"] = [
            {"position": 1, "step": 1, "level": "warning", "text": "\x1b]2;log\x07", "kind": "x"}
        ]

    _rewrite(trace, poison)
    loaded = load_trace(trace)
    assert loaded.header["scenario"]["name"] == "␛]2;PWNED␇"
    assert loaded.log[0]["text"] == "␛]2;log␇"
    result = _invoke("replay", str(trace), "--summary")
    assert result.exit_code == 0 and "␛]2;PWNED␇" in result.stdout
    _clean(result)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda h: h["scenario"].update(layers="dense"), "scenario.layers is str"),
        (lambda h: h["scenario"]["layers"][0].update(units="4"), "units is str"),
        (lambda h: h["scenario"].update(name=None), "scenario.name is NoneType"),
        (lambda h: h["backend"].pop("dtype"), "backend.dtype"),
        (lambda h: h.update(log=[{"step": 1, "level": "shout", "text": "x"}]), "level"),
        (lambda h: h.update(log=[{"level": "info", "text": "x"}]), "log[0].step"),
    ],
)
def test_a_trace_with_a_malformed_header_is_refused_in_one_line(
    tmp_path: Path, change: Any, says: str
) -> None:
    trace = _recorded(tmp_path)
    _rewrite(trace, change)
    with pytest.raises(TraceError, match="inconsistent contents") as caught:
        load_trace(trace)
    assert says in str(caught.value)
    result = _invoke("replay", str(trace), "--summary")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1


def test_a_bad_cap_setting_is_no_damage_of_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = _recorded(tmp_path)
    monkeypatch.setenv("BACKPROP_TUI_MAX_DATA_MB", "-3")
    with pytest.raises(TraceError, match="BACKPROP_TUI_MAX_DATA_MB must be a number") as caught:
        load_trace(trace)
    assert "damaged" not in str(caught.value)


def test_a_zip_bomb_trace_is_refused_before_it_inflates(tmp_path: Path) -> None:
    trace = _recorded(tmp_path)
    with (
        zipfile.ZipFile(trace, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("params/huge.npy", "w", force_zip64=True) as member,
    ):
        header = {"descr": "<f8", "fortran_order": False, "shape": (64 * MB,)}
        np.lib.format.write_array_header_1_0(member, header)
        chunk = bytes(MB)
        for _ in range(512):
            member.write(chunk)
    assert trace.stat().st_size < 2 * MB
    tracemalloc.start()
    try:
        with pytest.raises(TraceError, match="zip bomb") as caught:
            load_trace(trace)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * MB
    assert "BACKPROP_TUI_MAX_DATA_MB" in str(caught.value)
    result = _invoke("replay", str(trace), "--summary")
    assert result.exit_code == 2 and "zip bomb" in result.stderr


# ------------------------------------------------------------------------ the app
def _no_control(text: str, where: str) -> None:
    for char in CONTROL:
        assert char not in text, f"{char!r} in {where}: {text[:300]!r}"


async def test_the_app_draws_every_text_from_the_files_visible(tmp_path: Path) -> None:
    """The app, live and replaying a trace of the same run: no ESC, BEL, C1 CSI or
    bidi override from the scenario or its data in what it draws, nor in the title
    and subtitle it sets (Textual shows them, and a driver may pass them on)."""
    from backprop_tui.core import Debugger, Replay
    from backprop_tui.tui.app import make_app

    path = _files(tmp_path)
    trace = tmp_path / "run.npz"
    assert _invoke("run", str(path), "--steps", "3", "--save", str(trace)).exit_code == 0
    for run in (Debugger(load_scenario(path)), Replay(load_trace(trace))):
        app = make_app(run)
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.pause()
            for key in ("n", "n", "tab", "?", "escape"):  # a full step, the next pane, help
                await pilot.press(key)
                await pilot.pause()
                strips = app.screen._compositor.render_strips()
                drawn = "\n".join("".join(s.text for s in strip) for strip in strips)
                _no_control(drawn, f"the screen after {key!r}")
                _no_control(app.title, "the title")
                _no_control(app.sub_title, "the subtitle")
            assert "x␛]2;PWNED␇" in drawn, drawn  # the header names the scenario, visibly


def test_a_real_terminal_running_the_app_gets_no_sequence_from_the_file(tmp_path: Path) -> None:
    """Every byte the app writes to a real terminal (tmux's pipe-pane), and what the
    terminal made of them: its title stays the terminal's own, no clipboard write
    reached tmux's paste buffers, and the name shows with its escapes made visible."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    path = _files(tmp_path)
    raw = tmp_path / "bytes.out"
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", name]
    command = f"{Path(sys.executable).parent / 'backprop-tui'} {path}; echo EXITED $?; sleep 30"
    # The clipboard is on before the app starts: an OSC 52 would land in a paste buffer.
    start = ["start-server", ";", "set-option", "-g", "set-clipboard", "on", ";"]
    new = ["new-session", "-d", "-s", name, "-x", "200", "-y", "50", command]
    subprocess.run([*tmux, *start, *new], check=True)
    try:
        subprocess.run([*tmux, "pipe-pane", "-t", name, "-o", f"cat >> {raw}"], check=True)
        subprocess.run([*tmux, "send-keys", "-t", name, "n"], check=True)  # one step, drawn

        def screen() -> str:
            capture = [*tmux, "capture-pane", "-p", "-J", "-t", name]
            return subprocess.run(capture, capture_output=True, text=True).stdout

        deadline = time.monotonic() + 30
        while "step 1/" not in screen() or "PWNED" not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.1)
        shown = screen()
        title = subprocess.run(
            [*tmux, "display-message", "-p", "-t", name, "#{pane_title}"],
            capture_output=True,
            text=True,
        ).stdout
        buffers = subprocess.run([*tmux, "list-buffers"], capture_output=True, text=True).stdout
        subprocess.run([*tmux, "send-keys", "-t", name, "q"], check=True)
        deadline = time.monotonic() + 15
        while "EXITED" not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.1)
        exited = screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    written = raw.read_bytes()
    assert b"PWNED" in written  # the name did go out, as visible text
    for sequence in (b"\x1b]2;PWNED", b"\x1b]52;c;cHduZWQ=", b"harmless.\x1b[2J", b"\x1b[31m Then"):
        assert sequence not in written, f"{sequence!r} reached the terminal"
    assert b"\x07or" not in written and b"\xc2\x9b1m" not in written  # BEL, C1 CSI
    assert "PWNED" not in title, f"the terminal's title became {title!r}"
    assert "pwned" not in buffers.lower() and "cHduZWQ" not in buffers, buffers
    assert "x␛]2;PWNED␇" in shown and "EXITED 0" in exited
