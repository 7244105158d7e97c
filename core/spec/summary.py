"""The network summary printed by ``backprop-tui check`` (and shown in the app's header pane)."""

from __future__ import annotations

from .types import Scenario


def summary_lines(scenario: Scenario) -> list[str]:
    """Lines of text: layers with shapes and parameter counts, data set sizes, training."""
    lines = [f"scenario  {scenario.name}"]
    if scenario.description:
        lines.append(f"          {scenario.description}")
    lines.append("")
    # Dense-only networks keep the narrow table; other kinds get room for their names.
    tw = max(8, *(len(layer.type) + 2 for layer in scenario.layers))
    ow = max(12, *(len(_shape(layer.output_shape)) + 2 for layer in scenario.layers))
    lines.append(f"{'layer':<14}{'type':<{tw}}{'output':<{ow}}{'activation':<12}{'params':>10}")
    lines.append(f"{'input':<14}{'':<{tw}}{_shape(scenario.sample_shape):<{ow}}{'':<12}{0:>10,}")
    for layer in scenario.layers:
        activation = layer.activation if layer.has_kernel else ""
        lines.append(
            f"{layer.name:<14}{layer.type:<{tw}}{_shape(layer.output_shape):<{ow}}"
            f"{activation:<12}{layer.param_count:>10,}"
        )
    lines.append(f"{'total':<{14 + tw + ow + 12}}{scenario.param_count:>10,}")
    lines.append("")
    data = scenario.data
    lines.append(
        f"data      {data.source}: {len(data.x_train)} training, {len(data.x_val)} validation samples"
    )
    if data.class_names is not None:
        lines.append(f"classes   {', '.join(data.class_names)} (ids 0–{len(data.class_names) - 1})")
    opt = scenario.optimizer
    options = ", ".join(f"{k}={v}" for k, v in opt.options.items())
    penalties = [
        f"{name} {reg.text()}"
        for layer in scenario.layers
        for name, reg in layer.regularizers.items()
    ]
    lines.append(f"loss      {scenario.loss}" + (" + weight penalties" if penalties else ""))
    if penalties:
        lines.append(f"penalties {'; '.join(penalties)} (Keras' λ·Σ|w| and λ·Σw²)")
    lines.append(f"optimizer {opt.name} ({options})")
    if scenario.metrics:
        lines.append(f"metrics   {', '.join(scenario.metrics)}")
    t = scenario.training
    lines.append(
        f"training  {t.epochs} epochs × {scenario.steps_per_epoch()} steps, batch {t.batch_size}, "
        f"shuffle {'on' if t.shuffle else 'off'}, seed {scenario.seed}"
    )
    return lines


def _shape(shape: tuple[int, ...]) -> str:
    return "(None, " + ", ".join(str(n) for n in shape) + ")"
