"""Reading YAML: numbers as scenario writers mean them, positions for every key path."""

from __future__ import annotations

from backprop_tui.core.spec.yamlio import load_yaml


def test_exponent_without_a_dot_is_a_number() -> None:
    doc = load_yaml("lr: 1e-3\nbig: 2E5\nneg: -5e-1\nword: 1e3x\ncount: 10\n", "s.yaml")
    assert doc.value == {"lr": 0.001, "big": 200000.0, "neg": -0.5, "word": "1e3x", "count": 10}
    assert isinstance(doc.value["count"], int)


def test_positions_of_nested_paths() -> None:
    doc = load_yaml("model:\n  layers:\n    - {units: 4}\n    - units: 2\n", "s.yaml")
    assert doc.where("model.layers[1].units") == (4, 7)
    assert doc.where("model.layers[0].units") == (3, 8)
    # an unwritten key is placed at its nearest written parent
    assert doc.where("model.layers[1].activation") == doc.where("model.layers[1]")
