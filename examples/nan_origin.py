"""A model that goes NaN on purpose, to show the origin finder: a custom module in the
middle divides every feature by the first one, which ReLU makes zero for some samples;
those samples, and only those, carry Inf and NaN from there on.

    backprop-tui run examples/nan_origin.py --json    # stopped_by nan, exit 1
    backprop-tui examples/nan_origin.py               # c (continue) stops at the NaN
"""

import torch
from torch import nn


class RelativeFeatures(nn.Module):
    """Each feature relative to the first: fine until the first is exactly zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x[:, :1]


torch.manual_seed(0)
g = torch.Generator().manual_seed(1)
x = torch.randn(128, 6, generator=g)
y = torch.randint(0, 3, (128,), generator=g)

model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), RelativeFeatures(), nn.Linear(16, 3))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
data = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 128, 16)]
