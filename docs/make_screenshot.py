"""Save docs/screenshot.svg: the app on xor after 200 steps, the next update pending.

.venv/bin/python docs/make_screenshot.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import make_app

HERE = Path(__file__).resolve().parent


async def main() -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.run(200)
    app = make_app(dbg)
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#gradients").focus()
        await pilot.press("space", "space", "space", "space", "right", "down")
        app.save_screenshot("screenshot.svg", path=str(HERE))


if __name__ == "__main__":
    asyncio.run(main())
