"""Each bundled scenario trains to what its description promises, in its own epochs."""

from __future__ import annotations

import json

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.spec.scenario import bundled_dir
from backprop_tui.tui.cli import main
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

# scenario -> (metric of the last epoch, lower bound or upper bound, value)
PROMISES = {
    "xor": ("accuracy", ">=", 1.0),
    "circles": ("val_accuracy", ">=", 0.95),
    "moons": ("val_accuracy", ">=", 0.95),
    "spirals": ("val_accuracy", ">=", 0.90),
    "sine": ("val_loss", "<", 0.02),
    "glyphs8": ("val_accuracy", ">=", 0.90),
    "glyphs": ("val_accuracy", ">=", 0.95),
    "glyphs8_cnn": ("val_accuracy", ">=", 0.95),
    "glyphs_cnn": ("val_accuracy", ">=", 0.985),
}


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_scenario_keeps_its_promise(name: str) -> None:
    scenario = load_scenario(name)
    dbg = Debugger(scenario)
    # One BLAS thread: the small matrices of a CNN step gain nothing from more, and
    # on a busy machine spinning threads cost several times the work.
    with threadpool_limits(limits=1):
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


# bug scenario -> the diagnostic its description promises, and the words of its warning
DIAGNOSES = {
    "bug_dying_relu": ("dead_relu", "(dying ReLU)"),
    "bug_exploding": ("exploding_gradients", "(exploding gradients)"),
    "bug_vanishing": ("vanishing_gradients", "(vanishing gradients)"),
    "bug_saturation": ("saturation", "outputs over the batch are saturated"),
    "bug_symmetry": ("symmetry", "symmetry never breaks"),
    "bug_nan": ("inf", "Inf first appeared in"),
}


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("name", sorted(DIAGNOSES))
def test_a_bug_scenario_run_headless_as_shipped_shows_its_diagnosis(name: str) -> None:
    kind, words = DIAGNOSES[name]
    assert f"{kind} diagnostic" in load_scenario(name).description.replace("inf/nan", "inf")
    result = CliRunner().invoke(main, ["run", name, "--json"])
    assert result.exit_code == (1 if kind == "inf" else 0), result.output
    out = json.loads(result.stdout)
    # it stops at its own breakpoint (or the Inf), not at the end of training
    assert out["stopped_by"].startswith("inf" if kind == "inf" else "breakpoint: ")
    assert [w for w in out["warnings"] if words in w], out["warnings"]


def test_every_bug_scenario_names_its_diagnosis() -> None:
    assert {p.stem for p in bundled_dir().glob("bug_*.yaml")} == set(DIAGNOSES)


def test_glyphs_cnn_is_the_small_keras_cnn() -> None:
    scenario = load_scenario("glyphs_cnn")
    assert scenario.sample_shape == (28, 28, 1)
    assert [layer.type for layer in scenario.layers] == [
        "conv2d",
        "max_pooling2d",
        "conv2d",
        "max_pooling2d",
        "flatten",
        "dropout",
        "dense",
    ]
    assert [layer.output_shape for layer in scenario.layers] == [
        (26, 26, 8),
        (13, 13, 8),
        (11, 11, 16),
        (5, 5, 16),
        (400,),
        (400,),
        (10,),
    ]
    assert scenario.optimizer.name == "adam"
