"""The terminal UI's figures, measured in one run, quiet and with one competing CPU-bound process.

- time to first frame of ``backprop-tui scenarios/xor.yaml`` in a pseudo-terminal,
  against ``python -c "import textual.app"`` (target: first frame ≤ 0.6 s);
- CPU time per screen refresh after a training step at 120×40, for xor, the glyphs
  network (784→64→10) and a 784→512→512→10 network (target: ≤ 40 ms, and the big
  network within 1.3× of xor);
- continue-mode training steps per second with the screen live against the same
  loop headless, in alternating windows so a change in the machine's load hurts
  both alike (target: live ≥ 70% of headless), and how long a key takes to act
  meanwhile (target: ≤ 100 ms): tab, which moves the focus, and ], which selects
  a layer and redraws under the engine's lock. On xor and moons (the decision
  boundary pane on screen, its maps drawn as the run goes), and on 784→512→512→10
  at batch 32 and 128; then again with one other process spinning a core, which
  the bench starts and stops itself;
- bytes per second the app writes to a real terminal while continuing.

The app runs in this process with the BLAS threads ``backprop-tui`` chooses
(core/system/threads.py), as the command line sets them; ``--threads default``
leaves OpenBLAS's own (what ran before the choice existed), ``--threads N`` sets N.

    .venv/bin/python bench/bench_ui.py [--quick] [--threads policy|default|N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.system.allocator import keep_freed_memory
from backprop_tui.core.system.threads import apply_threads, configure_threads
from backprop_tui.tui.app import make_app
from backprop_tui.tui.widgets.base import Lines
from loadgen import Report, competing_process, machine
from textual import events

FIRST_FRAME_S = 0.6
REFRESH_MS = 40.0
REFRESH_OVER_XOR = 1.3
LIVE_SHARE = 0.70
KEY_MS = 100.0

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "backprop-tui")

BIG = """
name: big
description: 784→512→512→10 on 28×28 glyphs.
seed: 0
data: {generator: glyphs, size: 28, n: 640}
model:
  inputs: 784
  layers:
    - {name: hidden1, type: dense, units: 512, activation: relu, kernel_initializer: he_uniform}
    - {name: hidden2, type: dense, units: 512, activation: relu, kernel_initializer: he_uniform}
    - {name: output, type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.001}
metrics: [accuracy]
training: {epochs: 100000, batch_size: 32, shuffle: true}
"""
BIG_128 = BIG.replace("batch_size: 32", "batch_size: 128").replace("n: 640", "n: 2560")

LONG_XOR = (ROOT / "scenarios" / "xor.yaml").read_text().replace("epochs: 500", "epochs: 10000000")
LONG_MOONS = (
    (ROOT / "scenarios" / "moons.yaml").read_text().replace("epochs: 40", "epochs: 1000000")
)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------- first frame
def first_frame(args: list[str], marker: bytes, size: tuple[int, int] = (80, 24)) -> float:
    """Seconds from starting ``args`` in a pty until ``marker`` has been written; then quit."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(
            {"TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
        )
        os.execv(args[0], args)
    _set_size(fd, size)
    start = time.perf_counter()
    seen = b""
    elapsed = float("nan")
    while time.perf_counter() - start < 10:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
            if marker in seen:
                elapsed = time.perf_counter() - start
                break
    os.write(fd, b"q")
    _drain_and_reap(pid, fd)
    return elapsed


def _set_size(fd: int, size: tuple[int, int]) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))


def _drain_and_reap(pid: int, fd: int) -> None:
    end = time.perf_counter() + 5
    while time.perf_counter() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                if not os.read(fd, 65536):
                    break
            except OSError:
                break
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, 9)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    os.close(fd)


def import_time() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import textual.app"], check=True)
    return time.perf_counter() - start


def bytes_per_second(scenario: Path, seconds: float) -> float:
    """What the app writes to a 120×40 terminal per second while continuing."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(COMMAND, [COMMAND, str(scenario)])
    _set_size(fd, (120, 40))
    _read_for(fd, 1.5)  # the first frame
    os.write(fd, b"c")
    _read_for(fd, 0.5)
    written = _read_for(fd, seconds)
    os.write(fd, b"p")
    _read_for(fd, 0.3)
    os.write(fd, b"q")
    _drain_and_reap(pid, fd)
    return written / seconds


def _read_for(fd: int, seconds: float) -> int:
    total = 0
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.05))
        if ready:
            try:
                total += len(os.read(fd, 65536))
            except OSError:
                break
    return total


# ------------------------------------------------------------ refresh cost
async def refresh_cpu_ms(scenario: Path | str, refreshes: int) -> float:
    """Median CPU time of the UI thread to redraw every pane and composite the 120×40
    screen after a step."""
    dbg = Debugger(load_scenario(scenario))
    app = make_app(dbg)
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        for _ in range(refreshes):
            dbg.step("batch")
            # The UI's own thread: process time would also count the BLAS threads that
            # spin on after the step's matrix products, which is the engine's time.
            start = time.thread_time()
            app.redraw_all()
            await pilot.pause()
            times.append(time.thread_time() - start)
    return statistics.median(times) * 1000


# ------------------------------------------------------- continue throughput
async def continue_rates(
    scenario: Path, windows: int, seconds: float
) -> tuple[float, float, float, float]:
    """(headless steps/s, live steps/s, worst tab and worst ] in ms), from alternating
    windows: a headless loop, then the app continuing, with keys pressed half-way."""
    dbg = Debugger(load_scenario(scenario))
    app = make_app(dbg, fps=10)
    headless, live, tabs, layer_keys = [], [], [], []
    layers = dbg.layer_names
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for _ in range(windows):
            start, steps = time.perf_counter(), 0
            while time.perf_counter() - start < seconds:
                dbg.step("batch")
                steps += 1
            headless.append(steps / (time.perf_counter() - start))
            first = dbg.step_index
            start = time.perf_counter()
            app.action_continue_run()
            await asyncio.sleep(seconds / 2)
            tabs.append(await _key_latency(app))
            layer_keys.append(await _layer_key_latency(app, "right_square_bracket", layers[1]))
            layer_keys.append(await _layer_key_latency(app, "left_square_bracket", layers[0]))
            await asyncio.sleep(max(0.0, start + seconds - time.perf_counter()))
            app.action_pause()
            while app.session.running:
                await asyncio.sleep(0.005)
            live.append((dbg.step_index - first) / (time.perf_counter() - start))
            await pilot.pause()
    if dbg.no_input_map is None:  # the decision boundary pane was on screen: say it drew
        print(f"  ({dbg.layer_names[0]}…: {dbg.maps_computed} input-plane maps drawn meanwhile)")
    return statistics.median(headless), statistics.median(live), max(tabs), max(layer_keys)


async def _key_latency(app: object) -> float:
    """Milliseconds from a tab key arriving until the focus has moved."""
    before = app.focused  # type: ignore[attr-defined]
    start = time.perf_counter()
    app.post_message(events.Key("tab", None))  # type: ignore[attr-defined]
    while app.focused is before:  # type: ignore[attr-defined]
        await asyncio.sleep(0.001)
    return (time.perf_counter() - start) * 1000


async def _layer_key_latency(app: object, key: str, layer: str) -> float:
    """Milliseconds from a [ or ] key arriving until the network pane marks ``layer``:
    the key needs the engine's lock, and so does the redraw."""
    network = app.query_one("#network", Lines)  # type: ignore[attr-defined]
    start = time.perf_counter()
    app.post_message(events.Key(key, None))  # type: ignore[attr-defined]
    while f"▶ {layer}" not in network.plain:
        await asyncio.sleep(0.001)
    return (time.perf_counter() - start) * 1000


def continue_figures(
    report: Report, label: str, key: str, scenario: Path, windows: int, seconds: float
) -> None:
    headless, live, tab, layer_key = asyncio.run(continue_rates(scenario, windows, seconds))
    share = live / headless
    report.figure(f"headless_steps_s_{key}", headless)
    report.figure(f"live_steps_s_{key}", live)
    print(
        f"continue, {label:<30} headless {headless:7.1f} steps/s, live {live:7.1f}: "
        f"{share:4.0%} (≥ 70%) {report.at_least(f'live_share_{key}', share, LIVE_SHARE)}; "
        f"key at most: tab {tab:4.0f} ms {report.at_most(f'tab_ms_{key}', tab, KEY_MS)}, "
        f"] {layer_key:4.0f} ms (≤ 100) {report.at_most(f'layer_key_ms_{key}', layer_key, KEY_MS)}"
    )


def set_threads(threads: str) -> str:
    if threads == "policy":
        choice = configure_threads()
        return f"{choice.threads} ({choice.reason})"
    if threads == "default":
        return "OpenBLAS's default"
    apply_threads(int(threads))
    return threads


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: about a minute")
    parser.add_argument(
        "--threads", default="policy", help="BLAS threads: policy (as backprop-tui), default, N"
    )
    args = parser.parse_args()
    keep_freed_memory()  # as the command line does
    print(f"{machine()}; BLAS threads: {set_threads(args.threads)}")
    report = Report()
    repeats = 3 if args.quick else 7
    windows = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        big = write(directory, "big", BIG)
        big_128 = write(directory, "big_128", BIG_128)
        long_xor = write(directory, "long_xor", LONG_XOR)
        long_moons = write(directory, "long_moons", LONG_MOONS)

        frames = [
            first_frame([COMMAND, "scenarios/xor.yaml"], b"backprop-tui xor")
            for _ in range(repeats)
        ]
        imports = [import_time() for _ in range(repeats)]
        frame, imported = statistics.median(frames), statistics.median(imports)
        verdict = report.at_most("first_frame_s", frame, FIRST_FRAME_S)
        print(f"first frame of backprop-tui scenarios/xor.yaml: {frame:.3f} s (≤ 0.6 s) {verdict}")
        report.figure("import_textual_s", imported)
        print(
            f"python -c 'import textual.app':                  {imported:.3f} s  ratio {frame / imported:.2f}×"
        )

        refreshes = 10 if args.quick else 30
        costs = {
            name: asyncio.run(refresh_cpu_ms(scenario, refreshes))
            for name, scenario in (
                ("xor", "xor"),
                ("glyphs 784→64→10", "glyphs"),
                ("784→512→512→10", big),
            )
        }
        for (name, cost), key in zip(costs.items(), ("xor", "glyphs", "big"), strict=True):
            verdict = report.at_most(f"refresh_ms_{key}", cost, REFRESH_MS)
            print(
                f"refresh after a step, 120×40, {name:<18} {cost:6.1f} ms CPU (≤ 40 ms) {verdict}"
            )
        ratio = costs["784→512→512→10"] / costs["xor"]
        verdict = report.at_most("refresh_big_over_xor", ratio, REFRESH_OVER_XOR)
        print(f"784→512→512→10 against xor: {ratio:.2f}× (≤ 1.3×) {verdict}")

        runs = (
            ("xor", "xor", long_xor, 1.0),
            ("moons", "moons", long_moons, 1.0),
            ("784→512→512→10, batch 32", "big", big, 2.0),
            ("784→512→512→10, batch 128", "big128", big_128, 2.0),
        )
        print(f"quiet: {machine()}")
        for label, key, scenario, seconds in runs:
            continue_figures(report, label, key, scenario, windows, seconds)
        with competing_process():
            print(f"busy, one other process spinning a core: {machine()}")
            for label, key, scenario, seconds in (runs[0], runs[2]):
                continue_figures(
                    report, f"{label}, busy", f"{key}_busy", scenario, windows, seconds
                )

        rate = bytes_per_second(long_xor, 3.0)
        report.figure("terminal_kb_s", rate / 1000)
        print(
            f"written to a 120×40 terminal while continuing xor: {rate / 1000:.1f} KB/s (design: about 50 KB/s at most)"
        )
    report.finish()


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
