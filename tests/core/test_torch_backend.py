"""The torch backend on its own: activations, devices, what it hands out, the CLI around it.

Number-for-number agreement with the NumPy reference over whole runs is in
test_parity.py; these tests pin down the pieces and the contracts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import BackendUnavailable, Debugger
from backprop_tui.core.maths.activations import ACTIVATIONS
from backprop_tui.core.maths.losses import compute as numpy_loss
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from backprop_tui.tui.cli import main
from click.testing import CliRunner
from numpy.typing import NDArray

SKIP_REASON = "the torch backend needs PyTorch: pip install 'torch==2.13.0'"
# The hint the user sees without PyTorch: the pinned CPU build, not a bare "torch".
INSTALL_HINT = "pip install 'torch==2.13.0'"


@pytest.fixture
def torch() -> ModuleType:
    return pytest.importorskip("torch", reason=SKIP_REASON)


@pytest.fixture
def tb(torch: ModuleType) -> ModuleType:
    from backprop_tui.core.backends import torch_backend

    return torch_backend


@pytest.fixture
def no_cuda(torch: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a GPU, even where the tests run on one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def fake_gpus(torch: ModuleType, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def scenario_from(text: str) -> Any:
    return parse_scenario(load_yaml(text, "test.yaml"), Path.cwd())


SMALL = """
name: small
seed: 3
data: {generator: blobs, n: 24, classes: 3}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 5, activation: gelu}
    - {name: out, units: 3, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.05}
training: {epochs: 3, batch_size: 8}
"""


# ---------------------------------------------------------------- activations
GRID = np.concatenate(
    [
        np.linspace(-8.0, 8.0, 161),  # includes 0.0 exactly: the kinks of relu and friends
        [-1000.0, -745.0, -50.0, -20.5, -1e-300, 1e-300, 20.5, 39.0, 41.0, 50.0, 745.0, 1000.0],
    ]
)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_and_its_derivative_match_numpy(tb: ModuleType, name: str) -> None:
    import torch

    reference = ACTIVATIONS[name]
    z_np = GRID.reshape(-1, 1)
    if name == "softmax":  # it mixes units: give it three per sample
        z_np = np.stack([GRID, GRID[::-1] * 0.5, np.zeros_like(GRID)], axis=1)
    upstream = np.random.default_rng(1).normal(size=z_np.shape)
    a_np = reference.forward(z_np)
    dz_np = reference.backward(z_np, a_np, upstream)

    z = torch.tensor(z_np, dtype=torch.float64, requires_grad=True)
    a = tb._TORCH_ACTIVATIONS[name](z)
    (dz,) = torch.autograd.grad(a, z, grad_outputs=torch.tensor(upstream))
    np.testing.assert_allclose(a.detach().numpy(), a_np, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dz.numpy(), dz_np, rtol=1e-12, atol=1e-13)


def test_every_activation_has_a_torch_version(tb: ModuleType) -> None:
    assert set(tb._TORCH_ACTIVATIONS) == set(ACTIVATIONS)


def test_kinks_take_the_reference_side(tb: ModuleType) -> None:
    # At z = 0 exactly (zero-initialised weights) the derivative is a convention;
    # it must be the reference's: relu 0, leaky_relu 0.2, elu 1.
    import torch

    z = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    for name, slope in (("relu", 0.0), ("leaky_relu", 0.2), ("elu", 1.0), ("softplus", 0.5)):
        (dz,) = torch.autograd.grad(tb._TORCH_ACTIVATIONS[name](z).sum(), z)
        assert float(dz) == slope, name


# ---------------------------------------------------------------------- losses
@pytest.mark.parametrize("loss", ["binary_crossentropy", "categorical_crossentropy"])
def test_shown_dL_da_of_a_fused_output_is_the_probability_loss_derivative(
    tb: ModuleType, loss: str
) -> None:
    import torch

    rng = np.random.default_rng(4)
    a_np = rng.uniform(0.05, 0.95, size=(6, 4))
    y_np = np.eye(4)[rng.integers(0, 4, 6)]
    a = torch.tensor(a_np, requires_grad=True)
    y = torch.tensor(y_np)
    (by_autograd,) = torch.autograd.grad(tb._probability_loss(loss, y, a), a)
    written = tb._fused_output_dL_da(loss, y, a.detach())
    np.testing.assert_allclose(written.numpy(), by_autograd.numpy(), rtol=1e-13)
    # Where the clip bites (a of exactly 0 or 1) it is still the reference's number.
    a_np[0, :] = [0.0, 1.0, 0.0, 1.0]
    z_np = np.log(np.clip(a_np, 1e-300, None))  # any logits: dL/da does not read them
    ref = numpy_loss(loss, y_np, a_np, z_np, fused=True).dL_da
    np.testing.assert_allclose(
        tb._fused_output_dL_da(loss, y, torch.tensor(a_np)).numpy(), ref, rtol=1e-13
    )


EXTREME = """
name: extreme
seed: 0
data:
  inline: {{x: [[1.0], [-1.0], [0.5]], y: {y}}}
model:
  inputs: 1
  layers:
    - {{name: out, units: {units}, activation: {act}, kernel: [{kernel}], bias: {bias}}}
loss: {loss}
optimizer: {{name: sgd, learning_rate: 0.1}}
training: {{epochs: 1, batch_size: 3, shuffle: false}}
"""


@pytest.mark.parametrize(
    "fill",
    [
        {
            "y": "[[1], [1], [0]]",
            "units": 1,
            "act": "sigmoid",
            "kernel": "[1000.0]",
            "bias": "[0.0]",
            "loss": "binary_crossentropy",
        },
        {
            "y": "[2, 0, 1]",
            "units": 3,
            "act": "softmax",
            "kernel": "[1000.0, -1000.0, 0.0]",
            "bias": "[0.0, 0.0, 0.0]",
            "loss": "sparse_categorical_crossentropy",
        },
    ],
    ids=["sigmoid-bce", "softmax-cce"],
)
def test_logits_of_a_thousand_give_finite_losses_equal_to_numpy(
    torch: ModuleType, fill: dict[str, Any]
) -> None:
    scenario = scenario_from(EXTREME.format(**fill))
    runs = [Debugger(scenario, backend=b) for b in ("numpy", "torch")]
    for dbg in runs:
        dbg.step("batch")
    ref, got = runs
    assert ref.loss is not None and got.loss is not None
    assert np.isfinite(got.loss) and got.loss > 100  # wrong by a margin of 1000: a big loss
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    for name, grad in ref.grads.items():
        assert np.isfinite(got.grads[name]).all()
        np.testing.assert_allclose(got.grads[name], grad, rtol=1e-12, atol=1e-15)
    for key in ("dL_da", "dL_dz"):
        np.testing.assert_allclose(
            got.layer_arrays(0)[key], ref.layer_arrays(0)[key], rtol=1e-12, atol=1e-15
        )


# --------------------------------------------------------------------- devices
def test_cpu_and_auto_resolve(
    tb: ModuleType, torch: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_gpus(torch, monkeypatch, 0)
    assert tb.resolve_device("cpu") == "cpu"
    assert tb.resolve_device(" CPU ") == "cpu"
    assert tb.resolve_device("auto") == "cpu"
    fake_gpus(torch, monkeypatch, 2)
    assert tb.resolve_device("auto") == "cuda"
    assert tb.resolve_device("cuda") == "cuda"
    assert tb.resolve_device("cuda:1") == "cuda:1"
    assert tb.resolve_device("cuda:01") == "cuda:1"


def test_cuda_without_a_gpu_says_what_is_visible(tb: ModuleType, no_cuda: None) -> None:
    for device in ("cuda", "cuda:0"):
        with pytest.raises(BackendUnavailable) as caught:
            tb.resolve_device(device)
        message = str(caught.value)
        assert "no CUDA device is visible" in message and "visible devices: cpu" in message
        assert "\n" not in message


def test_a_gpu_number_that_does_not_exist(
    tb: ModuleType, torch: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_gpus(torch, monkeypatch, 2)
    with pytest.raises(BackendUnavailable, match=r"visible devices: cpu, cuda:0, cuda:1\)$"):
        tb.resolve_device("cuda:2")


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "cuda:-1", "mps", "", "cpu:0"])
def test_malformed_device_names_get_one_clear_line(tb: ModuleType, device: str) -> None:
    with pytest.raises(BackendUnavailable) as caught:
        tb.resolve_device(device)
    message = str(caught.value)
    assert message.startswith(f"unknown device '{device}'")
    assert "cpu, cuda, cuda:N" in message and "auto" in message and "\n" not in message


def test_the_backend_reports_its_resolved_device(torch: ModuleType) -> None:
    dbg = Debugger(scenario_from(SMALL), backend="torch", device="auto")
    assert dbg.backend.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert dbg.backend.name == "torch"


# ------------------------------------------------------- what the backend holds
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_everything_handed_out_is_a_detached_tensor_on_the_device(
    torch: ModuleType, dtype: str
) -> None:
    dbg = Debugger(scenario_from(SMALL), backend="torch", dtype=dtype)
    dbg.step("batch")
    b = dbg.backend
    want = getattr(torch, dtype)
    held = [*b.z, *b.a, *b.dL_da, *b.dL_dz, *b.grads.values(), *b.params.values(), b.x, b.y]
    assert len(b.grads) == 4 and all(t is not None for t in held)
    for tensor in held:
        assert isinstance(tensor, torch.Tensor)
        assert tensor.dtype == want and tensor.device.type == "cpu"
        assert not tensor.requires_grad and tensor.grad_fn is None
    for slots in dbg.opt_state.slots.values():
        for tensor in slots.values():
            assert isinstance(tensor, torch.Tensor) and not tensor.requires_grad
    host = dbg.params["hidden.kernel"]
    assert isinstance(host, np.ndarray) and host.dtype == np.dtype(dtype)


def test_shapes_follow_the_reference(torch: ModuleType) -> None:
    scenario = scenario_from(SMALL)
    ref, got = Debugger(scenario), Debugger(scenario, backend="torch")
    for dbg in (ref, got):
        dbg.step("batch")
    for i in range(2):
        r, g = ref.layer_arrays(i), got.layer_arrays(i)
        assert set(r) == set(g)
        for key in r:
            assert r[key].shape == g[key].shape, (i, key)


def test_backward_reveals_one_layer_at_a_time(torch: ModuleType) -> None:
    dbg = Debugger(scenario_from(SMALL), backend="torch")
    while dbg.phase != "loss":
        dbg.step("phase")
    b = dbg.backend
    # The loss phase gives the output's dL/da and, fused with softmax, its dL/dz.
    assert b.dL_da[1] is not None and b.dL_dz[1] is not None
    assert b.dL_da[0] is None and b.dL_dz[0] is None and b.grads == {}
    dbg.step("layer")  # backward through "out"
    assert set(b.grads) == {"out.kernel", "out.bias"}
    assert b.dL_da[0] is not None and b.dL_dz[0] is None
    dbg.step("layer")  # backward through "hidden"
    assert set(b.grads) == {"out.kernel", "out.bias", "hidden.kernel", "hidden.bias"}
    assert b.dL_dz[0] is not None


def test_parameters_are_replaced_never_written(torch: ModuleType) -> None:
    dbg = Debugger(scenario_from(SMALL), backend="torch")
    first = dict(dbg.backend.params)
    saved = {k: v.clone() for k, v in first.items()}
    dbg.step("batch")
    slots = {p: dict(s) for p, s in dbg.opt_state.slots.items()}
    saved_slots = {p: {k: v.clone() for k, v in s.items()} for p, s in slots.items()}
    for _ in range(4):
        dbg.step("batch")
    for name, tensor in first.items():
        assert torch.equal(tensor, saved[name]), f"{name} was written in place"
        assert tensor.grad is None, f"autograd wrote a .grad into {name}"
        assert dbg.backend.params[name] is not tensor
        assert not torch.equal(dbg.backend.params[name], tensor), f"{name} never moved"
    for p, s in slots.items():
        for k, v in s.items():
            assert torch.equal(v, saved_slots[p][k]), f"optimizer slot {p}.{k} was written in place"


def test_stepping_back_and_again_gives_the_same_numbers(torch: ModuleType) -> None:
    dbg = Debugger(scenario_from(SMALL), backend="torch")
    for _ in range(3):
        dbg.step("batch")
    at_three = dbg.params
    loss_four = dbg.step("batch").loss
    assert dbg.back()
    for name, value in at_three.items():
        np.testing.assert_array_equal(dbg.params[name], value)
    assert dbg.step("batch").loss == loss_four


def test_nothing_goes_to_the_host_while_stepping(
    torch: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backend driven as the debugger drives it, optimizer included: a whole
    # step makes no host copy; only reading a value does.
    from backprop_tui.core.backends.torch_backend import TorchBackend
    from backprop_tui.core.maths import optimizers
    from backprop_tui.core.run.debugger import initial_params

    scenario = scenario_from(SMALL)
    b = TorchBackend(scenario, initial_params(scenario), "float32", "cpu")
    copies: list[str] = []
    real = b.to_host

    def counting(array: Any) -> NDArray[Any]:
        copies.append(type(array).__name__)
        return real(array)

    monkeypatch.setattr(b, "to_host", counting)
    monkeypatch.setattr(torch.Tensor, "numpy", lambda *a, **k: pytest.fail("Tensor.numpy called"))
    spec = scenario.optimizer
    state = optimizers.init(spec, b.params, b.xp)
    for start in (0, 8, 16):
        b.begin(scenario.data.x_train[start : start + 8], scenario.data.y_train[start : start + 8])
        for i in range(2):
            b.forward_layer(i)
        loss = b.compute_loss()
        for i in (1, 0):
            b.backward_layer(i)
        updates, state = optimizers.update(spec, state, dict(b.grads), b.xp)
        b.set_params(optimizers.apply(b.params, updates))
        assert isinstance(loss, float) and np.isfinite(loss)
    assert copies == []
    monkeypatch.undo()
    assert b.params_host()["hidden.kernel"].shape == (2, 5)


def test_predict_matches_numpy_and_keeps_nothing(torch: ModuleType) -> None:
    scenario = scenario_from(SMALL)
    ref, got = Debugger(scenario), Debugger(scenario, backend="torch")
    x = scenario.data.x_train[:5]
    (rz, ra), (gz, ga) = ref.backend.predict(x), got.backend.predict(x)
    assert isinstance(gz, np.ndarray) and isinstance(ga, np.ndarray)
    np.testing.assert_allclose(gz, rz, rtol=1e-12)
    np.testing.assert_allclose(ga, ra, rtol=1e-12)
    assert got.backend.z == []  # no step begun: predict left no intermediates behind


def test_a_bad_dtype_is_one_line(torch: ModuleType) -> None:
    from backprop_tui.core.backends.torch_backend import TorchBackend

    with pytest.raises(BackendUnavailable, match="unknown dtype 'float16'; use float32 or float64"):
        TorchBackend(scenario_from(SMALL), {}, "float16", "cpu")


# ------------------------------------------------------------------------ CLI
def test_cli_runs_the_torch_backend_to_the_numpy_numbers(torch: ModuleType) -> None:
    runner = CliRunner()
    results = {}
    for backend in ("numpy", "torch"):
        args = ["run", "xor", "--backend", backend, "--steps", "25", "--json"]
        outcome = runner.invoke(main, args)
        assert outcome.exit_code == 0, outcome.output
        results[backend] = json.loads(outcome.stdout)
    assert results["torch"]["steps"] == 25
    assert results["torch"]["loss"] == pytest.approx(results["numpy"]["loss"], rel=1e-10)


def test_cli_cuda_without_a_gpu_exits_2_in_one_line(no_cuda: None) -> None:
    outcome = CliRunner().invoke(main, ["run", "xor", "--backend", "torch", "--device", "cuda"])
    assert outcome.exit_code == 2
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert "no CUDA device is visible" in lines[0] and "visible devices: cpu" in lines[0]
    assert "Traceback" not in outcome.output


def test_cli_bad_device_exits_2_in_one_line(torch: ModuleType) -> None:
    outcome = CliRunner().invoke(main, ["run", "xor", "--backend", "torch", "--device", "gpu"])
    assert outcome.exit_code == 2
    assert outcome.stderr.strip().splitlines() == [
        "backprop-tui: unknown device 'gpu'; use cpu, cuda, cuda:N (N = 0, 1, …) or auto"
    ]


WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # what `import torch` meets where PyTorch is not installed
from backprop_tui.tui.cli import main
main(sys.argv[1:])
"""


def test_without_torch_the_torch_backend_says_how_to_install_and_numpy_still_runs() -> None:
    # Needs no PyTorch itself: it runs where torch is missing, as well as where it is blocked.
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", WITHOUT_TORCH, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    asked = cli("run", "xor", "--backend", "torch", "--steps", "1")
    assert asked.returncode == 2, asked.stderr
    lines = asked.stderr.strip().splitlines()
    assert len(lines) == 1, asked.stderr
    assert INSTALL_HINT in lines[0] and "torch backend needs PyTorch" in lines[0]
    fallback = cli("run", "xor", "--steps", "3")
    assert fallback.returncode == 0, fallback.stderr
    assert "loss" in fallback.stdout


def test_overflow_is_reported_at_the_same_place_on_both_backends() -> None:
    """relu passes exactly 0 where z <= 0 on both backends, so 0 · inf makes no NaN."""
    pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    from backprop_tui.core import Debugger, load_scenario

    where = {}
    for backend in ("numpy", "torch"):
        dbg = Debugger(load_scenario("bug_exploding"), backend=backend)
        for breakpoint_index in range(len(dbg.breakpoints)):
            dbg.toggle_breakpoint(breakpoint_index)
        dbg.run(40)
        where[backend] = [e.text for e in dbg.log if e.kind in ("nan", "inf")]
    assert where["numpy"], "the scenario no longer overflows within 40 steps"
    assert where["numpy"] == where["torch"]
