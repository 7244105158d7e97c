"""An MLP on the bundled glyphs data (28×28 digits drawn as glyphs), with Adam.

backprop-tui examples/mlp_glyphs.py
"""

import torch
from backprop_tui.core import load_scenario
from torch import nn

torch.manual_seed(0)
glyphs = load_scenario("glyphs").data
x = torch.tensor(glyphs.x_train[:512], dtype=torch.float32)
y = torch.tensor(glyphs.y_train[:512].argmax(axis=1))

model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
data = torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=32, shuffle=True)
epochs = 2
