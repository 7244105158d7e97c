"""A custom forward with a residual block, LayerNorm, GELU and dropout, built with make().

backprop-tui examples/residual.py
"""

import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, inputs: int = 8, width: int = 32, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(inputs, width)
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(width, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.fc2(self.drop(self.act(self.fc1(self.norm(h)))))
        return self.head(h)


def make() -> dict[str, object]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    model = Residual()
    return {
        "model": model,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.AdamW(model.parameters(), lr=3e-3),
        "data": [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)],
        "epochs": 3,
    }
