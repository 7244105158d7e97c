"""The ``backprop-tui`` command: the app, and headless commands for SSH, scripts and CI.

Heavy imports (Textual, torch) are deferred to the commands that need them, so
``check``, ``run``, ``list`` and ``gradcheck`` never load Textual.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click
from backprop_tui.core.attach.errors import AttachError
from backprop_tui.core.errors import BackendUnavailable, ExpressionError, ScenarioError
from backprop_tui.core.safetext import visible
from backprop_tui.core.traces.recording import TraceError

if TYPE_CHECKING:
    from backprop_tui.core import Debugger, RunView
    from backprop_tui.core.attach.run import AttachedRun

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """Print one line to stderr and exit with status 2.

    Messages quote the user's files, which may hold control sequences: they are
    made visible here too, whatever made the message.
    """
    click.echo(f"backprop-tui: {visible(message)}", err=True)
    sys.exit(2)


def user_errors(func: F) -> F:
    """Turn the user's mistakes into one line on stderr and exit status 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ScenarioError, BackendUnavailable, TraceError, AttachError) as err:
            fail(str(err))
        except ExpressionError as err:
            click.echo(
                f"backprop-tui: bad breakpoint expression (column {err.column + 1}):", err=True
            )
            click.echo(visible(err.pointer(), newlines=True), err=True)
            sys.exit(2)
        except MemoryError:
            fail(
                "ran out of memory; use a smaller data set or network, --dtype float32, "
                "or a machine with more memory"
            )

    return wrapper  # type: ignore[return-value]


def engine_options(func: F) -> F:
    """--backend, --device, --dtype and --seed, shared by every command that trains."""
    func = click.option("--seed", type=int, default=None, help="Replace the scenario's seed.")(func)
    func = click.option(
        "--dtype",
        type=click.Choice(["float32", "float64"]),
        default="float64",
        show_default=True,
        help="Floating-point precision of the run.",
    )(func)
    func = click.option(
        "--device",
        default="cpu",
        show_default=True,
        help="cpu, cuda, cuda:N or auto (torch backend).",
    )(func)
    func = click.option(
        "--backend",
        type=click.Choice(["numpy", "torch"]),
        default="numpy",
        show_default=True,
        help="numpy (hand-written reference) or torch (autograd).",
    )(func)
    return func


def _set_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    from backprop_tui.core.system.threads import configure_threads

    configure_threads(value)  # the machine's choice when None: see core/system/threads.py


def thread_option(func: F) -> F:
    """--threads N (or BACKPROP_TUI_THREADS): the BLAS and torch thread count, set at start."""
    return click.option(
        "--threads",
        type=click.IntRange(1, None),
        default=None,
        envvar="BACKPROP_TUI_THREADS",
        show_envvar=True,
        expose_value=False,
        callback=_set_threads,
        help="BLAS and torch threads [default: 1 on 4 cores or fewer; more on a bigger, idle machine].",
    )(func)


def no_breakpoints_option(func: F) -> F:
    return click.option(
        "--no-breakpoints",
        is_flag=True,
        help="Ignore the scenario's breakpoints (NaN/Inf and --until still stop).",
    )(func)


def epochs_option(func: F) -> F:
    return click.option(
        "--epochs",
        type=click.IntRange(1, None),
        default=None,
        help="Train this many epochs instead of the scenario's: the way to train on past its end.",
    )(func)


def lr_option(func: F) -> F:
    return click.option(
        "--lr",
        "learning_rate",
        type=click.FloatRange(0.0, None, min_open=True),
        default=None,
        help="Train with this learning rate instead of the scenario optimizer's.",
    )(func)


def make_debugger(
    scenario_name: str, backend: str, device: str, dtype: str, seed: int | None, **extra: Any
) -> Debugger:
    from backprop_tui.core import Debugger, load_scenario

    scenario = load_scenario(scenario_name, seed=seed)
    return Debugger(scenario, backend=backend, device=device, dtype=dtype, **extra)


def is_script(name: str) -> bool:
    """A .py file is the user's own training script, run as code; anything else is data."""
    return name.endswith(".py")


def make_attached(script: str, **options: Any) -> AttachedRun:
    """The run of the model a training script defines (see core/attach/script.py)."""
    from backprop_tui.core import attach
    from backprop_tui.core.attach.script import load_script, user_error

    args = load_script(script)
    try:
        return attach(**args, **options)
    except AttachError:
        raise
    except Exception as err:  # the user's model or data failed on its first batch
        raise AttachError(user_error(err, script)) from err


def follow_unless_leader(run: AttachedRun) -> None:
    """Under DDP, every rank but 0 follows rank 0's commands and exits when it is done."""
    if not run.distributed:
        return
    from backprop_tui.core.attach.ddp import follow, shutdown
    from backprop_tui.core.attach.ddp import world as ddp_world

    place = ddp_world()
    if place is not None and place[0] != 0:
        follow(run)
        shutdown(run)
        sys.exit(0)


def finish_leader(run: AttachedRun) -> None:
    """Rank 0 is done: release the other ranks and close the process group."""
    if run.distributed:
        from backprop_tui.core.attach.ddp import release, shutdown

        release()
        shutdown(run)
    else:
        run.close()


class _DefaultGroup(click.Group):
    """``backprop-tui SCENARIO`` means ``backprop-tui open SCENARIO``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["open", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="backprop-tui")
def main() -> None:
    """A step-through debugger for neural-network training, in the terminal.

    \b
    backprop-tui SCENARIO          open the debugger (a path or a bundled name)
    backprop-tui run SCENARIO      train headless and print the result
    backprop-tui check SCENARIO    validate, summarize and run its expect: checks
    backprop-tui gradcheck SCENARIO  backprop against finite differences
    backprop-tui list              the bundled scenarios

    Data files are read into memory up to 8 GB each (a zip-bomb .npz is
    refused); set BACKPROP_TUI_MAX_DATA_MB to change the cap.
    """
    from backprop_tui.core.system.allocator import keep_freed_memory

    keep_freed_memory()  # every step allocates fresh arrays: reuse freed ones


@main.command("open")
@click.argument("scenario")
@engine_options
@thread_option
@click.option(
    "--fps",
    type=click.FloatRange(1, 60),
    default=10.0,
    show_default=True,
    help=(
        "Screen refreshes per second while continuing, at most: fewer (4 at least) while "
        "steps are too quick to share the CPU with drawing."
    ),
)
@click.option(
    "--history-mb",
    type=click.FloatRange(1, None),
    default=256.0,
    show_default=True,
    help="Memory cap of the step-back history.",
)
@no_breakpoints_option
@epochs_option
@lr_option
@user_errors
def open_(
    scenario: str,
    backend: str,
    device: str,
    dtype: str,
    seed: int | None,
    fps: float,
    history_mb: float,
    no_breakpoints: bool = False,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> None:
    """Open the debugger on SCENARIO (a .yaml path or a bundled name such as xor), or on
    the model a training script defines (a .py file, run as code)."""
    debugger: RunView
    attached = None
    if is_script(scenario) and learning_rate is not None:
        fail("--lr sets a scenario's learning rate; a training script sets its own optimizer's")
    if is_script(scenario):
        debugger = attached = make_attached(scenario, history_mb=history_mb)
        follow_unless_leader(attached)
    else:
        debugger = make_debugger(
            scenario,
            backend,
            device,
            dtype,
            seed,
            history_mb=history_mb,
            epochs=epochs,
            breakpoints=not no_breakpoints,
            learning_rate=learning_rate,
        )
    from .app import make_app

    app = make_app(debugger, fps=fps)
    try:
        app.run()
    finally:
        if attached is not None:
            finish_leader(attached)
    sys.exit(app.return_code or 0)


@main.command("list")
def list_() -> None:
    """List the bundled scenarios with their descriptions."""
    from backprop_tui.core.spec.scenario import bundled_dir, load_scenario

    for path in sorted(bundled_dir().glob("*.yaml")):
        try:
            description = load_scenario(path).description
        except ScenarioError as err:
            description = f"(broken: {err})"
        first = description.split(". ")[0].rstrip(".")
        click.echo(f"{path.stem:<22} {first}")


@main.command()
@click.argument("scenario")
@engine_options
@thread_option
@click.option("--no-expect", is_flag=True, help="Only validate; do not run the expect: checks.")
@user_errors
def check(
    scenario: str, backend: str, device: str, dtype: str, seed: int | None, no_expect: bool
) -> None:
    """Validate SCENARIO, print the network summary and run its expect: checks.

    Trains only as far as the checks need. Exit status 1 when one fails.
    """
    from backprop_tui.core import Debugger, load_scenario
    from backprop_tui.core.spec.expect import run_expectations
    from backprop_tui.core.spec.summary import summary_lines

    loaded = load_scenario(scenario, seed=seed)
    for line in summary_lines(loaded):
        click.echo(visible(line))
    if no_expect or not loaded.expectations:
        return
    dbg = Debugger(loaded, backend=backend, device=device, dtype=dtype)
    spe = loaded.steps_per_epoch()
    needed = max(e.target(spe)[0] + 1 for e in loaded.expectations)
    with progress(dbg, needed, "checking") as tick:
        results = run_expectations(dbg, progress=tick)
    click.echo("")
    click.echo(f"expectations ({backend}, {dtype})")
    for result in results:
        click.echo(f"  {result.line()}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} of {len(results)} expectations hold")
    if failed:
        sys.exit(1)


@main.command()
@click.argument("scenario")
@engine_options
@thread_option
@click.option(
    "--steps",
    type=click.IntRange(0, None),
    default=None,
    help="Training steps to take (default: all epochs).",
)
@click.option(
    "--until",
    "until",
    default=None,
    metavar="EXPR",
    help="Stop once this breakpoint expression holds, e.g. 'loss < 0.01 or grad_norm > 100'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--save",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="TRACE.npz",
    help="Record the run to a trace that `backprop-tui replay` opens.",
)
@click.option(
    "--trace-mb",
    type=click.FloatRange(0.1, None),
    default=64.0,
    show_default=True,
    help="Size cap of the trace: weights are kept every K steps, K chosen to fit.",
)
@no_breakpoints_option
@epochs_option
@lr_option
@user_errors
def run(
    scenario: str,
    backend: str,
    device: str,
    dtype: str,
    seed: int | None,
    steps: int | None,
    until: str | None,
    as_json: bool,
    save: str | None = None,
    trace_mb: float = 64.0,
    no_breakpoints: bool = False,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> None:
    """Train SCENARIO headless: progress on stderr, the result on stdout.

    It stops early at the first NaN or Inf, at --until, or at a breakpoint the
    scenario declares; stopped_by says which ("breakpoint: EXPR", "nan" or
    "inf", "steps", "end" or "interrupt"). Exit status 0 when it finished or
    stopped at a breakpoint or --steps, 1 on NaN/Inf, 2 on a usage or scenario
    error, 130 (SIGINT) or 143 (SIGTERM) when interrupted: the step in progress
    ends, and the trace so far is saved. SCENARIO may be a training script
    (.py, run as code).
    """
    if is_script(scenario) and learning_rate is not None:
        fail("--lr sets a scenario's learning rate; a training script sets its own optimizer's")
    if is_script(scenario):
        _run_script(scenario, steps, until, as_json, save)
        return
    with Interrupts() as interrupts:
        # A headless run never steps back: keep the history to one step.
        dbg = make_debugger(
            scenario,
            backend,
            device,
            dtype,
            seed,
            history_mb=1,
            epochs=epochs,
            breakpoints=not no_breakpoints,
            learning_rate=learning_rate,
        )
        if until is not None:
            dbg.parse_expression(until)  # a bad expression fails here, before any training
        total = dbg.total_steps if steps is None else steps
        recorder = _start_trace(dbg, save, trace_mb)
        with progress(dbg, total) as tick:
            stopped_by, taken = train(dbg, until, steps, tick, interrupts)
        _finish_trace(recorder)
        result = run_summary(dbg, stopped_by, taken)
        if as_json:
            click.echo(json.dumps({k: _json_number(v) for k, v in result.items()}, allow_nan=False))
        else:
            print_summary(result)
    status = run_status(stopped_by, interrupts.signal)
    if status:  # 0 returns: a caller with standalone_mode=False goes on
        sys.exit(status)


TRACE_CHECKPOINT_S = 60.0  # a long recorded run is saved this often, so a kill loses little


def _start_trace(dbg: Debugger, path: str | None, trace_mb: float) -> Any:
    if path is None:
        return None
    from pathlib import Path

    from backprop_tui.core.traces.recording import MB, TraceRecorder

    if not Path(path).resolve().parent.is_dir():
        raise TraceError("its folder does not exist; create it first", path)

    recorder = TraceRecorder(dbg, int(trace_mb * MB), path=path, checkpoint_s=TRACE_CHECKPOINT_S)
    dbg.listeners.append(lambda _run: recorder.observe(dbg))
    return recorder


def _finish_trace(recorder: Any) -> None:
    if recorder is None:
        return
    from backprop_tui.core.traces.recording import MB

    size = recorder.save()
    if recorder.stopped:
        click.echo(f"backprop-tui: warning: {recorder.stopped}; raise --trace-mb", err=True)
    every = recorder.params_every if recorder.snapshots else "no"
    click.echo(
        f"trace saved to {recorder.path} ({size / MB:.2f} MB; weights every {every} steps "
        "and the last)",
        err=True,
    )


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _json_number(value: Any) -> Any:
    """NaN and ±inf are not JSON (jq and most parsers refuse them): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_summary(dbg: Debugger, stopped_by: str, steps: int | None = None) -> dict[str, Any]:
    """The ``--json`` object: steps, epoch, loss, each metric by its Keras name, stopped_by, warnings.

    ``steps``: the steps this run took (default: the run's step number); ``epoch``
    is the 1-based epoch of the last step, as the app's header says it.
    """
    taken = dbg.step_number if steps is None else steps
    result: dict[str, Any] = {"steps": taken, "epoch": dbg.epoch_number, "loss": dbg.loss}
    if dbg.penalty is not None:  # loss is Keras' (data + penalty); the penalty apart
        result["penalty"] = dbg.penalty
    result.update(dbg.metrics)
    if dbg.epoch_history:
        last = dbg.epoch_history[-1].as_dict()
        for key, value in last.items():
            if key.startswith("val_"):
                result[key] = value
    elif dbg.scenario.data.has_validation:
        val_loss, val_metrics = dbg.evaluate("validation")
        result["val_loss"] = val_loss
        result.update({f"val_{k}": v for k, v in (val_metrics or {}).items()})
    if dbg.scenario.data.class_names is not None:
        result["classes"] = list(dbg.scenario.data.class_names)  # the output units' names
    result["stopped_by"] = stopped_by
    result["warnings"] = [entry.text for entry in dbg.log if entry.level == "warning"]
    return result


def print_summary(result: dict[str, Any]) -> None:
    """The text form of :func:`run_summary`: the numbers, the warnings, what stopped it."""
    click.echo(f"steps {result['steps']}  epoch {result['epoch']}  loss {_num(result['loss'])}")
    for key, value in result.items():
        if key in ("steps", "epoch", "loss", "stopped_by", "warnings"):
            continue
        if key == "classes":
            click.echo(f"classes {', '.join(value)}")
            continue
        click.echo(f"{key} {_num(value)}")
    for warning in result["warnings"]:
        click.echo(f"warning: {visible(warning)}")
    click.echo(f"stopped by {result['stopped_by']}")


class Interrupts:
    """SIGINT and SIGTERM while a run trains: the step in progress ends, then the run stops.

    ``signal`` is the first one caught. A second one stops at once
    (KeyboardInterrupt), as someone pressing Ctrl-C twice expects.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._again = signal.SIGINT  # the second signal, which stops at once
        self._before: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        import threading

        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._before[sig] = signal.signal(sig, self._caught)
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            click.echo("backprop-tui: interrupted again: stopped at once", err=True)
            raise SystemExit(128 + self._again)

    def _caught(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            self._again = signal.Signals(signum)
            raise KeyboardInterrupt
        self.signal = signum


class _Interrupted(Exception):
    """Raised between steps to leave run_until once a signal came."""


def train(
    dbg: RunView,
    until: str | None,
    steps: int | None,
    tick: Callable[[int], None],
    interrupts: Interrupts,
) -> tuple[str, int]:
    """Run until a stop; (what stopped it, steps taken). A NaN/Inf stop says which it was."""
    taken = 0

    def on_step(_: object) -> None:
        nonlocal taken
        taken += 1
        tick(taken)
        if interrupts.signal is not None:
            raise _Interrupted

    try:
        outcome = dbg.run_until(until, max_steps=steps, on_step=on_step)
    except _Interrupted:
        return "interrupt", taken
    hit = outcome.hit
    if hit is not None and hit.kind == "nan":
        return hit.text, outcome.steps  # "nan" or "inf", whichever the step made first
    return outcome.stopped_by, outcome.steps


def run_status(stopped_by: str, caught: int | None) -> int:
    """0: finished, a breakpoint or --steps; 1: NaN/Inf; 128 + N: stopped by signal N."""
    if caught is not None:
        return 128 + caught  # 130 for SIGINT, 143 for SIGTERM, as shells report them
    return 1 if stopped_by in ("nan", "inf") else 0


PROGRESS_FIRST_S = 1.0  # without a terminal: the first progress line, then ever more seldom
PROGRESS_MAX_S = 30.0


@contextlib.contextmanager
def progress(dbg: RunView, total: int, doing: str = "training") -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; elsewhere (a pipe, a log file) a line that says what
    runs, then a line at growing intervals. Yields ``tick(steps_taken)``."""
    label = visible(dbg.title)
    if sys.stderr.isatty():
        with click.progressbar(
            length=total, label=label, file=sys.stderr, show_pos=True, show_eta=True
        ) as bar:
            yield lambda taken: bar.update(taken - bar.pos)
        return
    click.echo(f"backprop-tui: {doing} {label}, up to {total} steps on {dbg.where}", err=True)
    start = time.monotonic()
    gap = PROGRESS_FIRST_S
    due = start + gap

    def tick(taken: int) -> None:
        nonlocal gap, due
        now = time.monotonic()
        if now < due:
            return
        gap = min(gap * 2, PROGRESS_MAX_S)
        due = now + gap
        click.echo(
            f"{label}: step {taken} of {total}, epoch {dbg.epoch_number} of "
            f"{dbg.total_epochs}, loss {_num(dbg.loss)} ({now - start:.0f} s)",
            err=True,
        )

    yield tick


@main.command()
@click.argument("scenario")
@engine_options
@thread_option
@click.option("--layer", default=None, help="Check only this layer's parameters.")
@click.option(
    "--steps",
    type=click.IntRange(0, None),
    default=0,
    show_default=True,
    help="Training steps to take first, so the check runs at trained weights.",
)
@click.option(
    "--sample",
    type=click.IntRange(1, None),
    default=64,
    show_default=True,
    help="Entries checked per parameter; smaller parameters are checked whole.",
)
@click.option(
    "--eps", type=click.FloatRange(0, None, min_open=True), default=1e-6, show_default=True
)
@user_errors
def gradcheck(
    scenario: str,
    backend: str,
    device: str,
    dtype: str,
    seed: int | None,
    layer: str | None,
    steps: int,
    sample: int,
    eps: float,
) -> None:
    """Check backprop against finite differences (float64): a table, exit 1 on failure.

    SCENARIO may be a training script (.py, run as code): its model is checked on a
    float64 copy, never touched itself."""
    if is_script(scenario):
        _gradcheck_script(scenario, layer, steps, sample, eps)
        return
    from backprop_tui.core.run.gradcheck import gradient_check

    dbg = make_debugger(scenario, backend, device, dtype, seed)
    names = dbg.layer_names
    if layer is not None and layer not in names:
        fail(f"--layer: no layer named '{layer}'; the layers are {', '.join(names)}")
    for _ in range(steps):
        dbg.step("batch")
    result = gradient_check(dbg, layer=layer, sample=sample, eps=eps)
    for line in result.table():
        click.echo(line)
    sys.exit(0 if result.passed else 1)


def _run_script(
    script: str, steps: int | None, until: str | None, as_json: bool, save: str | None
) -> None:
    """``run`` on a training script: the attached model, headless, as ``run`` reports a
    scenario (steps taken, the 1-based epoch, exit 1 on NaN/Inf, 130/143 on a signal)."""
    from backprop_tui.core.attach.script import user_error

    if save is not None:
        fail("--save records scenario runs only; a training script's run cannot be saved yet")
    with Interrupts() as interrupts:
        dbg = make_attached(script, history_mb=1)
        if until is not None:
            dbg.parse_expression(until)
        follow_unless_leader(dbg)
        total = dbg.total_steps if steps is None else steps
        try:
            with progress(dbg, total) as tick:
                stopped_by, taken = train(dbg, until, steps, tick, interrupts)
        except AttachError:
            raise
        except Exception as err:  # the user's model failed in a step
            raise AttachError(user_error(err, script)) from err
        finally:
            finish_leader(dbg)
        result: dict[str, Any] = {"steps": taken, "epoch": dbg.epoch_number, "loss": dbg.loss}
        result.update(dbg.metrics)
        result["stopped_by"] = stopped_by
        result["warnings"] = [entry.text for entry in dbg.log if entry.level == "warning"]
        if as_json:
            click.echo(json.dumps({k: _json_number(v) for k, v in result.items()}, allow_nan=False))
        else:
            print_summary(result)
    status = run_status(stopped_by, interrupts.signal)
    if status:
        sys.exit(status)


def _gradcheck_script(script: str, layer: str | None, steps: int, sample: int, eps: float) -> None:
    from backprop_tui.core.attach.gradcheck import check_attached

    dbg = make_attached(script, history_mb=1)
    if dbg.distributed:
        fail("gradcheck runs on one process: run it with python, not torchrun")
    names = dbg.layer_names
    if layer is not None and layer not in names:
        fail(f"--layer: no layer named '{layer}'; the layers are {', '.join(names)}")
    for _ in range(steps):
        dbg.step("batch")
    result = check_attached(dbg, layer=layer, sample=sample, eps=eps)
    for line in result.table():
        click.echo(visible(line))
    dbg.close()
    sys.exit(0 if result.passed else 1)


@main.command()
@click.argument("trace", type=click.Path(dir_okay=False))
@thread_option
@click.option("--summary", is_flag=True, help="Print what the trace holds; do not open the app.")
@click.option(
    "--fps",
    type=click.FloatRange(1, 60),
    default=10.0,
    show_default=True,
    help="Screen refreshes per second while playing.",
)
@user_errors
def replay(trace: str, summary: bool, fps: float) -> None:
    """Open a trace recorded with `run --save` in the app, read-only: step forward and back."""
    from backprop_tui.core import Replay

    replayed = Replay(trace)
    if summary:
        for line in replayed.summary_lines():
            click.echo(visible(line))
        return
    from .app import make_app

    app = make_app(replayed, fps=fps)
    app.run()
    sys.exit(app.return_code or 0)


if __name__ == "__main__":
    main()
