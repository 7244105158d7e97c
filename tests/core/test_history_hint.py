"""A history that ran out of memory says how to keep more, once; a fresh run says nothing."""

from __future__ import annotations

from pathlib import Path

from backprop_tui.core import Debugger, load_scenario

# 2 × 20000 + 20000 weights and 20001 biases, about 640 KB a snapshot in float64:
# a 1 MB history holds one.
WIDE = """
name: wide
data: {generator: xor}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 20000, activation: tanh}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: sgd, learning_rate: 0.1}
training: {epochs: 20, batch_size: 4}
"""


def test_running_out_of_history_hints_at_history_mb(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE)
    dbg = Debugger(load_scenario(path), history_mb=1, keyframe_every=1)
    dbg.run(5)
    assert dbg.back()  # to step 4: the newest snapshot is kept whatever the cap
    assert not dbg.back()
    hints = [e for e in dbg.log if "--history-mb" in e.text]
    assert len(hints) == 1
    assert "cannot go back past step 4" in hints[0].text
    assert "raise --history-mb" in hints[0].text and "1 MB" in hints[0].text
    assert not dbg.back()  # asked again: not said again
    assert len([e for e in dbg.log if "--history-mb" in e.text]) == 1


def test_at_the_start_there_is_nothing_to_raise() -> None:
    dbg = Debugger(load_scenario("xor"))
    assert not dbg.back()
    dbg.step("batch")
    assert dbg.back() and not dbg.back()
    assert not [e for e in dbg.log if "--history-mb" in e.text]
