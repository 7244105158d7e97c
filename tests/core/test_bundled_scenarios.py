"""Each bundled scenario trains to what its description promises, in its own epochs."""

from __future__ import annotations

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.spec.scenario import bundled_dir

# scenario -> (metric of the last epoch, lower bound or upper bound, value)
PROMISES = {
    "xor": ("accuracy", ">=", 1.0),
    "circles": ("val_accuracy", ">=", 0.95),
    "moons": ("val_accuracy", ">=", 0.95),
    "spirals": ("val_accuracy", ">=", 0.90),
    "sine": ("val_loss", "<", 0.02),
    "glyphs8": ("val_accuracy", ">=", 0.90),
    "glyphs": ("val_accuracy", ">=", 0.95),
}


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_scenario_keeps_its_promise(name: str) -> None:
    scenario = load_scenario(name)
    dbg = Debugger(scenario)
    dbg.run(dbg.total_steps)
    assert dbg.finished
    key, op, bound = PROMISES[name]
    value = dbg.epoch_history[-1].as_dict()[key]
    assert value >= bound if op == ">=" else value < bound, f"{name}: {key} = {value}"


def test_glyphs_is_the_classic_network() -> None:
    scenario = load_scenario("glyphs")
    assert scenario.inputs == 784
    assert [(layer.units, layer.activation) for layer in scenario.layers] == [
        (64, "relu"),
        (10, "softmax"),
    ]
    assert scenario.optimizer.name == "adam"
    assert scenario.loss == "categorical_crossentropy"
    assert scenario.training.batch_size == 32 and scenario.training.epochs == 10


def test_every_bundled_scenario_loads_and_says_what_it_shows() -> None:
    paths = sorted(bundled_dir().glob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        scenario = load_scenario(path)
        assert scenario.description, f"{path.name} has no description"
