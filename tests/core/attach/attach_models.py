"""Small models and plain training loops the attach tests compare against."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

torch.set_num_threads(1)


class Residual(nn.Module):
    """A custom forward with a residual block, LayerNorm and GELU."""

    def __init__(self, inputs: int = 6, width: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(inputs, width)
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(width, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.fc2(self.act(self.fc1(self.norm(h))))
        return self.head(h)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU()
        )
        self.flat = nn.Flatten()
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.flat(self.features(x)))


class WithDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 32)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.bn(self.drop(self.relu(self.fc1(x)))))


class TinyGPT(nn.Module):
    """nanoGPT's shape in miniature: tied embedding, attention with dropout inside
    scaled_dot_product_attention, and the loss computed in forward."""

    def __init__(self, vocab: int = 11, width: int = 16, context: int = 8) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = idx.shape
        h = self.wte(idx) + self.wpe(torch.arange(t))
        q, k, v = self.qkv(self.ln1(h)).split(h.shape[-1], dim=2)
        heads = 2
        q, k, v = (z.view(b, t, heads, -1).transpose(1, 2) for z in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=0.1 if self.training else 0.0
        )
        h = h + self.proj(y.transpose(1, 2).reshape(b, t, -1))
        h = h + self.mlp(self.ln2(h))
        logits = self.lm_head(self.ln_f(h))
        loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def gpt_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=3e-3, betas=(0.9, 0.95))


def warmup_cosine(warmup: int = 3, total: int = 20) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / total)))

    return factor


def gpt_data(batches: int = 4, size: int = 4, context: int = 8) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(5)
    text = torch.randint(0, 11, (batches * size + 1, context + 1), generator=g)
    return [
        (text[i * size : (i + 1) * size, :-1], text[i * size : (i + 1) * size, 1:])
        for i in range(batches)
    ]


def pairs(batches: int = 4, size: int = 8, features: int = 6, seed: int = 1) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, features, generator=g), torch.randint(0, 3, (size,), generator=g))
        for _ in range(batches)
    ]


def images(batches: int = 3, size: int = 5, seed: int = 2) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 1, 8, 8, generator=g), torch.randint(0, 3, (size,), generator=g))
        for _ in range(batches)
    ]


def plain_loop(
    model: nn.Module,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    data: Any,
    steps: int,
    scheduler: Any = None,
    clip: float | None = None,
) -> list[float]:
    """The loop ``attach`` must match: zero_grad, loss, backward, clip, step, scheduler."""
    losses: list[float] = []
    while len(losses) < steps:
        for batch in data:
            optimizer.zero_grad()
            if loss_fn is not None:
                x, y = batch
                loss = loss_fn(model(x), y)
            else:
                out = model(**batch) if isinstance(batch, dict) else model(*batch)
                loss = out if isinstance(out, torch.Tensor) else _own_loss(out)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(float(loss.detach()))
            if len(losses) == steps:
                break
    return losses


def _own_loss(out: Any) -> torch.Tensor:
    if hasattr(out, "loss"):
        return out.loss  # type: ignore[no-any-return]
    if isinstance(out, dict):
        return out["loss"]  # type: ignore[no-any-return]
    return next(t for t in out if isinstance(t, torch.Tensor) and t.ndim == 0)


def same_state(a: nn.Module, b: nn.Module, oa: Any, ob: Any) -> None:
    """Parameters, buffers and optimizer state equal bit for bit."""
    for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb
        assert torch.equal(ta, tb), f"{na} differs"
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for key in sa["state"]:
        for name, value in sa["state"][key].items():
            other = sb["state"][key][name]
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, other), f"optimizer state {key}.{name} differs"
            else:
                assert value == other
