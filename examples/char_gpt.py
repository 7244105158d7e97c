"""A small character-level GPT written for backprop-tui, in nanoGPT's shape: a token
embedding tied to the output layer, causal self-attention with dropout inside
scaled_dot_product_attention, the loss computed in forward (``logits, loss =
model(x, y)``), AdamW parameter groups, clipping at 1.0 and a warmup-then-cosine
learning rate.

    backprop-tui examples/char_gpt.py
    backprop-tui run examples/char_gpt.py --until "grad_norm > 5" --json
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

TEXT = (
    "to be, or not to be, that is the question: whether tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
)
CONTEXT, WIDTH, HEADS = 16, 32, 2


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.ln2 = nn.LayerNorm(WIDTH)
        self.fc = nn.Linear(WIDTH, 4 * WIDTH)
        self.gelu = nn.GELU()
        self.out = nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, c = h.shape
        q, k, v = self.qkv(self.ln1(h)).split(c, dim=2)
        q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=0.1 if self.training else 0.0
        )
        h = h + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return h + self.out(self.gelu(self.fc(self.ln2(h))))


class CharGPT(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, WIDTH)
        self.wpe = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.Sequential(Block(), Block())
        self.ln_f = nn.LayerNorm(WIDTH)
        self.lm_head = nn.Linear(WIDTH, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        logits = self.lm_head(self.ln_f(self.blocks(h)))
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def warmup_cosine(step: int, warmup: int = 10, total: int = 200) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / (total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


torch.manual_seed(0)
chars = sorted(set(TEXT))
ids = torch.tensor([chars.index(c) for c in TEXT])
starts = torch.arange(0, len(ids) - CONTEXT - 1, 4)
pairs = [(ids[s : s + CONTEXT], ids[s + 1 : s + CONTEXT + 1]) for s in starts.tolist()]
data = [
    (torch.stack([p[0] for p in pairs[i : i + 8]]), torch.stack([p[1] for p in pairs[i : i + 8]]))
    for i in range(0, len(pairs), 8)
]

model = CharGPT(len(chars))
loss_fn = None  # the model computes its own loss
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
    lr=3e-3,
    betas=(0.9, 0.95),
)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)
clip_grad_norm = 1.0
epochs = 5
