"""Save the README's screenshots, the app's own SVG export at 120×40:

- docs/screenshot.svg: xor after 200 steps, the next update pending;
- docs/boundary.svg: xor trained to its end, the decision boundary pane zoomed (z)
  with the output layer selected: the network's answer over the input plane.

.venv/bin/python docs/make_screenshot.py
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import make_app
from backprop_tui.tui.widgets.boundary import BoundaryPane

HERE = Path(__file__).resolve().parent


async def main() -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.run(200)
    app = make_app(dbg)
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#gradients").focus()
        await pilot.press("space", "space", "space", "space", "right", "down")
        app.save_screenshot("screenshot.svg", path=str(HERE))

    trained = Debugger(load_scenario("xor"))
    trained.run(trained.total_steps)
    app = make_app(trained)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("right_square_bracket")  # the output layer
        app.query_one("#boundary").focus()
        await pilot.press("z")
        pane = app.query_one("#boundary", BoundaryPane)
        deadline = time.monotonic() + 10
        while pane.shown is None or (pane.shown_key is None and time.monotonic() < deadline):
            await pilot.pause(0.05)  # the engine works the map out on its own thread
        await pilot.pause(0.3)
        app.save_screenshot("boundary.svg", path=str(HERE))


if __name__ == "__main__":
    asyncio.run(main())
