"""DDP with gloo, two processes on localhost: rank 0 leads, rank 1 follows, and the
result is the plain DDP loop's, bit for bit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

MODEL = """
import copy
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def build(rank):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(100 + rank)  # each rank its own shard
    data = [(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(4)]
    return base, data


def plain(base, data, steps, seed):
    model = DDP(copy.deepcopy(base))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(seed)
    losses = []
    while len(losses) < steps:
        for x, y in data:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if len(losses) == steps:
                break
    return model, opt, losses
"""

WORKER = """
import gc, json, sys, copy
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
sys.path.insert(0, sys.argv[2])
from ddp_model import build, plain
from backprop_tui.core import attach
from backprop_tui.core.attach.ddp import follow, release

rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method=sys.argv[3], rank=rank, world_size=2)
base, data = build(rank)
model = DDP(copy.deepcopy(base))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
torch.manual_seed(7)
run = attach(model, nn.CrossEntropyLoss(), opt, data, epochs=3)
if rank == 0:
    run.step("phase"); run.step("layer"); run.step("phase"); run.step("batch")
    run.run_until(max_steps=5)
    run.back(); run.back()
    result = run.run_until(max_steps=2)
    release()
else:
    follow(run)
steps = run.step_index
mine = [s.loss for s in run.step_history]
run.close()
ref_model, ref_opt, losses = plain(base, data, steps, 7)
same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()))
same_opt = all(
    torch.equal(sa[k], sb[k])
    for sa, sb in zip(opt.state_dict()["state"].values(), ref_opt.state_dict()["state"].values())
    for k in sa
)
if rank == 0:
    print(json.dumps({"steps": steps, "same": same, "same_opt": same_opt,
                      "mine": mine, "plain": losses, "kind": type(run).__name__}))
del model, opt, ref_model, ref_opt, run
gc.collect()
dist.barrier()
dist.destroy_process_group()
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["GLOO_SOCKET_IFNAME"] = env.get("GLOO_SOCKET_IFNAME", "lo")
    return env


def test_two_ranks_follow_rank_zero_and_equal_the_plain_ddp_loop(tmp_path: Path) -> None:
    (tmp_path / "ddp_model.py").write_text(MODEL)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    url = f"tcp://127.0.0.1:{_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(rank), str(tmp_path), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    found = json.loads(outs[0][0].strip().splitlines()[-1])
    assert found["kind"] == "LeaderRun"
    assert found["steps"] == 6
    assert found["same"] and found["same_opt"]
    assert found["mine"] == found["plain"]


SCRIPT = """
import os
import sys
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
sys.path.insert(0, os.path.dirname(__file__))
from ddp_model import build

dist.init_process_group("gloo")
base, data = build(dist.get_rank())
model = DDP(base)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
torch.manual_seed(7)
"""

PLAIN = """
import os, sys, json
import torch.distributed as dist
sys.path.insert(0, os.path.dirname(__file__))
from ddp_model import build, plain

dist.init_process_group("gloo")
base, data = build(dist.get_rank())
model, opt, losses = plain(base, data, 3, 7)
if dist.get_rank() == 0:
    print(json.dumps({"loss": losses[-1]}))
del model, opt
dist.barrier()
dist.destroy_process_group()
"""


def _torchrun(args: list[str]) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port of its own: no race with other tests for one
        "--nproc_per_node=2",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=_env())


def test_run_a_ddp_script_under_torchrun_gets_the_plain_loss(tmp_path: Path) -> None:
    (tmp_path / "ddp_model.py").write_text(MODEL)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    (tmp_path / "plain.py").write_text(PLAIN)
    debugged = _torchrun(
        ["-m", "backprop_tui.tui.cli", "run", str(script), "--steps", "3", "--json"]
    )
    assert debugged.returncode == 0, debugged.stderr
    lines = [line for line in debugged.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    found = json.loads(lines[0])
    plain = _torchrun([str(tmp_path / "plain.py")])
    assert plain.returncode == 0, plain.stderr
    expected = json.loads(plain.stdout.strip().splitlines()[-1])
    assert found["steps"] == 3 and found["loss"] == expected["loss"]
