"""What a run is, read off its scenario: shared by a scenario run and a replay of one."""

from __future__ import annotations

from ..maths import losses, optimizers
from ..runview import LayerView
from ..spec.scenario import Scenario


class ScenarioFacts:
    """The ``RunView`` members that follow from the scenario alone.

    A class that mixes it in sets ``scenario`` and ``_layers`` (its layers as
    the panes see them).
    """

    scenario: Scenario
    _layers: tuple[LayerView, ...]

    @property
    def title(self) -> str:
        return self.scenario.name

    @property
    def description(self) -> str:
        return self.scenario.description

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.scenario.sample_shape

    @property
    def layers(self) -> tuple[LayerView, ...]:
        return self._layers

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    @property
    def loss_name(self) -> str:
        return self.scenario.loss

    @property
    def fused_output(self) -> bool:
        return losses.FUSED.get(self.scenario.loss) == self.scenario.layers[-1].activation

    @property
    def update_rule(self) -> str:
        return optimizers.rule_text(self.scenario.optimizer)

    @property
    def term_names(self) -> tuple[str, ...]:
        return optimizers.term_names(self.scenario.optimizer)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.scenario.metrics)

    @property
    def batch_size(self) -> int:
        return self.scenario.training.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.scenario.steps_per_epoch()
