"""A small CNN on the glyphs data reshaped to 1×28×28 images, with SGD and momentum.

backprop-tui examples/cnn.py
"""

import torch
from backprop_tui.core import load_scenario
from torch import nn

torch.manual_seed(0)
glyphs = load_scenario("glyphs").data
x = torch.tensor(glyphs.x_train[:256], dtype=torch.float32).reshape(-1, 1, 28, 28)
y = torch.tensor(glyphs.y_train[:256].argmax(axis=1))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.out = nn.Linear(16, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.flat(self.pool(self.features(images))))


model = SmallCNN()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
data = torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=32, shuffle=True)
