"""The network summary printed by ``backprop-tui check`` (and shown in the app's header pane)."""

from __future__ import annotations

from .types import Scenario


def summary_lines(scenario: Scenario) -> list[str]:
    """Lines of text: layers with shapes and parameter counts, data set sizes, training."""
    lines = [f"scenario  {scenario.name}"]
    if scenario.description:
        lines.append(f"          {scenario.description}")
    lines.append("")
    lines.append(f"{'layer':<14}{'type':<8}{'output':<12}{'activation':<12}{'params':>10}")
    lines.append(f"{'input':<14}{'':<8}{f'(None, {scenario.inputs})':<12}{'':<12}{0:>10,}")
    for layer in scenario.layers:
        shape = f"(None, {layer.units})"
        lines.append(
            f"{layer.name:<14}{layer.type:<8}{shape:<12}{layer.activation:<12}{layer.param_count:>10,}"
        )
    lines.append(f"{'total':<46}{scenario.param_count:>10,}")
    lines.append("")
    data = scenario.data
    lines.append(
        f"data      {data.source}: {len(data.x_train)} training, {len(data.x_val)} validation samples"
    )
    if data.class_names is not None:
        lines.append(f"classes   {', '.join(data.class_names)} (ids 0–{len(data.class_names) - 1})")
    opt = scenario.optimizer
    options = ", ".join(f"{k}={v}" for k, v in opt.options.items())
    lines.append(f"loss      {scenario.loss}")
    lines.append(f"optimizer {opt.name} ({options})")
    if scenario.metrics:
        lines.append(f"metrics   {', '.join(scenario.metrics)}")
    t = scenario.training
    lines.append(
        f"training  {t.epochs} epochs × {scenario.steps_per_epoch()} steps, batch {t.batch_size}, "
        f"shuffle {'on' if t.shuffle else 'off'}, seed {scenario.seed}"
    )
    return lines
