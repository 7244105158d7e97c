"""Every example in examples/ loads, steps its forward pass module by module in the
order the modules ran, and trains a step; the NaN example is traced to its module."""

from __future__ import annotations

from pathlib import Path

import pytest
from backprop_tui.core import attach
from backprop_tui.core.attach.script import load_script

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_forward_by_layer_visits_every_module_in_order(path: Path) -> None:
    run = attach(**load_script(path))
    run.step("phase")
    seen = []
    while True:
        record = run.step("layer")
        if record.phase != "forward":
            break
        seen.append(record.layer_name)
    assert seen == run.layer_names
    # the layers' order is the order their calls finished in this very pass
    finished = [run._by_call[(id(c.module), c.number)] for c in run.tracer.calls]
    assert finished == list(range(len(seen)))
    owned = {name for layer in run.layers for name in layer.param_names}
    assert owned == set(run.params)
    run.step("batch")
    assert run.step_index == 1
    run.close()


def test_the_nan_example_names_its_module_and_samples() -> None:
    path = next(p for p in EXAMPLES if p.stem == "nan_origin")
    run = attach(**load_script(path))
    result = run.run_until(max_steps=5)
    assert result.hit is not None and result.hit.kind == "nan"
    assert "module 2 (RelativeFeatures)" in result.hit.reason and "samples" in result.hit.reason
