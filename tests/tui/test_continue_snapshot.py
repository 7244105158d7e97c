"""While continuing, the panes draw from the snapshot the worker publishes, not under the lock."""

from __future__ import annotations

import threading
import time

from backprop_tui.core import Debugger, RunSnapshot, load_scenario
from backprop_tui.tui.app import make_app
from backprop_tui.tui.session import EngineLock
from tui_helpers import pane_text


def _long_glyphs() -> Debugger:
    return Debugger(load_scenario("glyphs8"), epochs=100000)


async def test_a_key_redraws_while_another_thread_holds_the_engine_lock() -> None:
    dbg = _long_glyphs()
    app = make_app(dbg)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("c")
        deadline = time.monotonic() + 20
        while app.session.snapshot is None:
            assert time.monotonic() < deadline, "no snapshot was published"
            await pilot.pause(0.01)
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with app.session.lock:
                held.set()
                release.wait(20)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(20), "the worker did not hand the lock over"
            step = dbg.step_index
            await pilot.press("right_square_bracket")
            assert f"▶ {dbg.layer_names[1]}" in pane_text(app, "network")
            assert holder.is_alive()  # drawn while the lock was still held
            assert dbg.step_index == step  # the worker waits for the lock meanwhile
        finally:
            release.set()
            holder.join(20)
        await pilot.press("p")
        while app.session.running:
            await pilot.pause(0.01)
        await pilot.pause()
        assert app.session.snapshot is None
        assert f"step {dbg.step_number}/" in pane_text(app, "header")


async def test_the_worker_prepares_the_snapshots_drawn_in_full() -> None:
    dbg = _long_glyphs()
    app = make_app(dbg)
    seen: list[RunSnapshot] = []
    async with app.run_test(size=(160, 48)) as pilot:
        app.session.preparers.append(seen.append)
        await pilot.press("c")
        deadline = time.monotonic() + 20
        while len(seen) < 2:
            assert time.monotonic() < deadline, "no detailed snapshot was prepared"
            await pilot.pause(0.05)
        await pilot.press("p")
        while app.session.running:
            await pilot.pause(0.01)
    assert all(snapshot.detailed for snapshot in seen)


def test_the_worker_waits_while_the_screen_goes_first() -> None:
    lock = EngineLock()
    stepped = threading.Event()

    def worker() -> None:
        with lock.worker_turn():
            stepped.set()

    lock.screen_first(20.0)
    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert not stepped.wait(0.2), "the worker stepped while the screen went first"
        lock.screen_done()
        assert stepped.wait(20), "the worker did not go on once the screen was done"
    finally:
        lock.screen_done()
        thread.join(20)


def test_an_earlier_key_s_answer_does_not_end_a_later_key_s_wait() -> None:
    lock = EngineLock()
    first = lock.screen_first(20.0)
    second = lock.screen_first(20.0)
    lock.screen_done(first)  # the first key drawn; the second not yet
    stepped = threading.Event()

    def worker() -> None:
        with lock.worker_turn():
            stepped.set()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert not stepped.wait(0.2), "the worker went on before the second key was drawn"
        lock.screen_done(second)
        assert stepped.wait(20)
    finally:
        lock.screen_done()
        thread.join(20)


def test_the_screen_going_first_ends_by_itself() -> None:
    lock = EngineLock()
    lock.screen_first(0.05)
    start = time.monotonic()
    with lock.worker_turn():
        waited = time.monotonic() - start
    assert 0.03 <= waited < 5.0


async def test_a_key_while_continuing_has_the_steps_wait_until_it_is_drawn() -> None:
    dbg = _long_glyphs()
    app = make_app(dbg)
    lock = app.session.lock
    calls: list[str] = []
    first, done = lock.screen_first, lock.screen_done

    def screen_first(seconds: float) -> int:
        calls.append("first")
        return first(seconds)

    def screen_done(ask: int | None = None) -> None:
        calls.append("done")
        done(ask)

    lock.screen_first, lock.screen_done = screen_first, screen_done  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("right_square_bracket")  # not running: the steps never wait
        await pilot.pause()
        assert calls == []
        await pilot.press("c")
        while app.session.snapshot is None:
            await pilot.pause(0.01)
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert f"▶ {dbg.layer_names[0]}" in pane_text(app, "network")
        assert calls[:2] == ["first", "done"]  # the screen said so once it had drawn the key
        await pilot.press("p")
        while app.session.running:
            await pilot.pause(0.01)
