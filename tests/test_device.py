"""Where the networks run (``--device``, ``Explorer(device=...)``; :mod:`explorer.models.device`).

* the choice is resolved as documented (``auto`` is the CPU without a GPU, quietly; a GPU that is
  not there is one error line and exit status 2, from every CLI command and the app);
* ``cpu`` asked for explicitly is honoured end to end on a machine that reports a GPU: every
  module of the model sees only CPU tensors and no torch call makes a tensor anywhere else;
* on a second device (:mod:`tests.device_emulation`: CPU kernels behind a device that is not the
  CPU, with CUDA's rules on mixing devices and on ``.numpy()``) every path — explanation with
  Grad-CAM and SmoothGrad, prediction, the global passes, the metrics, ProtoPNet and PIP-Net
  training, the ProtoPDebug retrain — runs without a device error and gives the CPU's results
  exactly, and the model's modules see only tensors on that device.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from explorer import Explorer
from explorer.models import device as device_module
from explorer.models.checkpoint import load_model
from explorer.models.device import DeviceError, describe_device, resolve_device
from tests.conftest import tiny_pipnet_setup
from tests.device_emulation import EMULATED, emulated_device, on_emulated

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
needs_no_gpu = pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")


# --- the choice ---------------------------------------------------------------------------------


@needs_no_gpu
def test_auto_without_a_gpu_is_the_cpu_without_a_warning(tiny_folder_model: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
        explorer = Explorer([tiny_folder_model], device="auto")
        explorer.predict(next(iter(explorer.bundle().examples())))
    assert explorer.device == torch.device("cpu")
    assert [str(w.message) for w in caught] == []


@needs_no_gpu
def test_auto_on_the_command_line_predicts_on_the_cpu_without_a_warning(
    tiny_folder_model: Path,
) -> None:
    image = sorted((tiny_folder_model / "examples").glob("*.png"))[0]
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "explorer", "predict", "--device", "auto",
         "--model", str(tiny_folder_model), str(image)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def reports_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """The explorer's one question about GPUs answers ``count`` (torch's own functions are left
    alone: torch asks them too, and would then look for a driver)."""
    monkeypatch.setattr(device_module, "_cuda_count", lambda: count)


def test_gpus_are_chosen_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with two GPUs."""
    reports_gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device(" CUDA:1 ") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match=r"has 2 CUDA GPUs \(cuda:0\.\.cuda:1\)"):
        resolve_device("cuda:2")
    # a GPU keeps float32 exact: no TensorFloat-32 in convolutions or matrix products
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


@pytest.mark.parametrize("choice", ["tpu", "cuda:x", "cuda:-1", "gpu", "cpu:0"])
def test_a_device_that_is_no_device_is_refused_with_the_choices(choice: str) -> None:
    with pytest.raises(DeviceError, match="is not one of auto, cpu, cuda, cuda:N"):
        resolve_device(choice)


@needs_no_gpu
def test_a_gpu_asked_for_where_there_is_none_is_refused_by_the_library() -> None:
    for choice in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(DeviceError, match="torch sees no CUDA GPU here") as refused:
            Explorer(device=choice)
        assert "\n" not in str(refused.value) and "--device cpu" in str(refused.value)


def assert_one_gpu_error_line(stderr: str, asked: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: device '{asked}' was asked for"), lines
    assert "no CUDA GPU" in lines[0] and "--device cpu" in lines[0]


COMMANDS = {
    "predict": ["predict", "x.png"],
    "explain": ["explain", "x.png", "--out", "{tmp}/out"],
    "report": ["report", "x.png", "--out", "{tmp}/out"],
    "analyse": ["analyse"],
    "evaluate": ["evaluate"],
    "redundancy": ["redundancy"],
    "sheet": ["sheet"],
    "compare": ["compare", "--model", "synthetic", "--model", "synthetic_pipnet"],
    "debug": ["debug", "--model", "synthetic", "--out", "{tmp}/out"],
    "before-after": ["before-after", "--before", "synthetic", "--after", "synthetic"],
    "models": ["models"],
    "labels": ["labels", "export", "{tmp}/labels.json"],
    "train": ["train", "--preset", "synthetic", "--out", "{tmp}/out"],
    "import": ["import", "{tmp}/missing.pth", "--out", "{tmp}/out"],
}
"""Every CLI command that runs a network (``users`` manages a login file and runs none)."""


@needs_no_gpu
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_asked_for_a_gpu_where_there_is_none_says_so_in_one_line_with_status_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from explorer.cli import main

    arguments = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    assert main([*arguments, "--device", "cuda"]) == 2
    assert_one_gpu_error_line(capsys.readouterr().err, "cuda")
    assert not (tmp_path / "out").exists()  # nothing written


@needs_no_gpu
@pytest.mark.slow
@pytest.mark.parametrize(
    "program", [["-m", "explorer", "analyse"], ["app.py", "--port", "0"]], ids=["cli", "app"]
)
def test_a_gpu_asked_for_where_there_is_none_ends_the_process_with_status_2(program) -> None:
    result = subprocess.run(
        [sys.executable, *program, "--device", "cuda:0"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert_one_gpu_error_line(result.stderr, "cuda:0")


def test_the_device_is_described_in_words() -> None:
    assert describe_device(torch.device("cpu")).startswith("cpu (")


def test_only_the_device_module_asks_torch_about_gpus() -> None:
    """The device is chosen in one place (what the tests below patch to report a GPU): no other
    module asks torch whether there is one, or makes a CUDA device itself (the Ray engine passes
    ``"cuda"`` to an actor Ray gave one GPU, the device the user chose)."""
    package = ROOT / "explorer"
    asking = [
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        if path.name != "device.py"
        and any(
            word in path.read_text()
            for word in ("cuda.is_available", "cuda.device_count", 'device("cuda', "'cuda'")
        )
    ]
    assert asking == []


# --- every path, on the CPU and on a second device ---------------------------------------------


def run_everything(explorer: Explorer, model_id: str, data: Path, out: Path) -> dict[str, Any]:
    """Every path that runs the network, through the facade (and the trainers behind it); the
    results as plain arrays and numbers."""
    test_image = sorted((data / "test").rglob("*.png"))[0]
    results: dict[str, Any] = {}
    prediction = explorer.predict(str(test_image), model_id)
    results["probabilities"] = np.array(prediction.probabilities)
    explanation = explorer.explain(str(test_image), model_id, attribution="gradcam")
    results["scores"] = explanation.activations.scores
    results["gradcam"] = explanation.attribution.values
    smooth = explorer.explain(str(test_image), model_id, attribution="gradcam", smoothgrad=True)
    results["smoothgrad"] = smooth.attribution.values
    what_if = explorer.explain(str(test_image), model_id, attribution=None, disabled=[0])
    results["what_if_logits"] = what_if.activations.logits
    local = explorer.local_attributes(str(test_image), model_id)
    results["local_phi"] = local.phi
    results["doses"] = np.concatenate([v for _, v in explorer.dose_curves(0, model_id).values()])
    results["prototype_map"] = explorer.prototype(0, model_id).self_activation
    results["sheet"] = repr(explorer.scoring_sheet(model_id))
    nearest = explorer._nearest(explorer.bundle(model_id), "test")
    results["nearest_scores"] = nearest.all_scores
    attributes = explorer.global_attributes(model_id, split="test")
    results["phi"] = attributes.phi
    results["phi_interval"] = np.stack(attributes.phi_interval)
    metrics = explorer.evaluate(model_id).to_dict()
    results["metrics"] = repr(metrics)
    trained = explorer.train(
        out / "trained", data=str(data), model_id="trained", backbone="small_cnn", input_size=32,
        warm_epochs=1, joint_epochs=1, last_epochs=1, prototypes_per_class=1,
    )  # fmt: skip
    results["trained_accuracy"] = trained.accuracy
    results["trained_weights"] = load_model(out / "trained").model.state_dict()
    return results


def assert_same(cpu: dict[str, Any], other: dict[str, Any]) -> None:
    assert cpu.keys() == other.keys()
    for name, expected in cpu.items():
        got = other[name]
        if isinstance(expected, dict) and all(
            isinstance(v, torch.Tensor) for v in expected.values()
        ):
            assert expected.keys() == got.keys(), name
            assert all(torch.equal(expected[k], got[k]) for k in expected), name
        elif isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:
            assert got == expected, name


@contextmanager
def modules_see(check: Callable[[torch.Tensor], bool], model: torch.nn.Module) -> Iterator[list]:
    """Every module of ``model`` checks each tensor it is given and gives back; yields the number of
    calls seen (a list, filled as they happen). A tensor that fails ``check`` fails the call."""
    seen: list[str] = []

    def inspect(module: torch.nn.Module, inputs: tuple, output: Any) -> None:
        for value in (*inputs, *(output if isinstance(output, tuple) else (output,))):
            for tensor in (
                (getattr(value, f) for f in ("logits", "scores"))
                if hasattr(value, "scores")
                else (value,)
            ):
                if isinstance(tensor, torch.Tensor) and not check(tensor):
                    raise AssertionError(f"{type(module).__name__} saw a tensor on {tensor.device}")
        seen.append(type(module).__name__)

    handles = [m.register_forward_hook(inspect) for m in model.modules()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


class OnlyCpuTensors(TorchFunctionMode):
    """Fails any torch call that returns a tensor outside the CPU; counts the tensors seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in result if isinstance(result, tuple | list) else (result,):
            if isinstance(value, torch.Tensor):
                self.tensors += 1
                if value.device.type != "cpu":
                    raise AssertionError(f"{func} made a tensor on {value.device}")
        return result


@pytest.fixture(scope="module")
def on_the_cpu(tiny_folder_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Everything, on the CPU."""
    root = tmp_path_factory.mktemp("cpu")
    explorer = Explorer([tiny_folder_model], device="cpu", cache_root=root / "cache")
    data = Path(explorer.spec("tiny_folder").dataset["name"])
    return run_everything(explorer, "tiny_folder", data, root)


@pytest.mark.slow
def test_cpu_asked_for_is_honoured_end_to_end_on_a_machine_with_a_gpu(
    tiny_folder_model: Path, on_the_cpu: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a GPU is reported: code that chose the device itself instead of honouring `cpu` would go
    # there (and fail: there is none behind it)
    reports_gpus(monkeypatch, 1)
    assert resolve_device("auto").type == "cuda"
    explorer = Explorer([tiny_folder_model], device="cpu", cache_root=tmp_path / "cache")
    data = Path(explorer.spec("tiny_folder").dataset["name"])
    only_cpu = OnlyCpuTensors()
    with modules_see(lambda t: t.device.type == "cpu", explorer.bundle().model) as seen, only_cpu:
        results = run_everything(explorer, "tiny_folder", data, tmp_path)
    assert len(seen) > 1000 and only_cpu.tensors > 10_000  # the checks did look
    assert_same(on_the_cpu, results)


@pytest.mark.slow
def test_a_second_device_runs_every_path_and_gives_the_cpu_results_exactly(
    tiny_folder_model: Path, on_the_cpu: dict, tmp_path: Path
) -> None:
    with emulated_device() as device:
        explorer = Explorer([tiny_folder_model], device="cpu", cache_root=tmp_path / "cache")
        explorer.device = device  # the device a user would have asked for
        model = explorer.bundle("tiny_folder").model
        assert all(on_emulated(p) for p in model.parameters())
        data = Path(explorer.spec("tiny_folder").dataset["name"])
        with modules_see(on_emulated, model) as seen:
            results = run_everything(explorer, "tiny_folder", data, tmp_path)
        assert len(seen) > 1000
        trained = explorer.spec("trained")
    assert trained.training["device"] == describe_device(EMULATED)
    assert_same(on_the_cpu, results)


def test_the_emulated_device_enforces_cudas_rules() -> None:
    """The second device the test above runs on is strict where CUDA is: without this, the test
    above could pass on code that mixes devices."""
    with emulated_device() as device:
        x = torch.ones(2, 3).to(device)
        assert on_emulated(x) and x.device == device
        with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
            x + torch.ones(2, 3)
        with pytest.raises(RuntimeError, match="numpy"):
            x.numpy()
        with pytest.raises(RuntimeError, match="numpy"):
            np.asarray(x)
        assert float((x * 2).sum()) == 12.0  # a 0-dim result read with .item() is fine
        assert x + torch.tensor(1.0) is not None  # a CPU scalar tensor is fine, as on CUDA
        back = x.cpu()
        assert not on_emulated(back) and back.numpy().sum() == 6.0
        layer = torch.nn.Linear(3, 1).to(device)
        layer(x).sum().backward()
        assert on_emulated(layer.weight.grad)


# --- the other trainers on a second device ------------------------------------------------------


def tiny_pipnet_run(out: Path, device: torch.device | str) -> dict[str, torch.Tensor]:
    from explorer.train.pipnet_trainer import train_pipnet

    config, train, test = tiny_pipnet_setup()
    train_pipnet(config, out, train, test, device=device)
    return load_model(out).model.state_dict()


def tiny_debug_run(folder: Path, out: Path, device: torch.device | str, data: tuple) -> dict:
    from explorer.analysis.cut_outs import prototype_cut_outs
    from explorer.train.debug import DebugConfig, debug_model

    parent = load_model(folder, device)
    forbidden = prototype_cut_outs(parent, 0)
    quick = DebugConfig(warm_epochs=1, joint_epochs=1, last_epochs=2)
    train_set, test_set = data
    debug_model(parent, forbidden, [], out, "child", config=quick, train_set=train_set,
                test_set=test_set)  # fmt: skip
    return load_model(out).model.state_dict()


@pytest.mark.slow
def test_pipnet_training_and_the_protopdebug_retrain_on_a_second_device_equal_the_cpus(
    tiny_run, tmp_path: Path
) -> None:
    folder, (train_set, test_set, _) = tiny_run
    cpu = {
        "pipnet": tiny_pipnet_run(tmp_path / "pipnet_cpu", "cpu"),
        "debug": tiny_debug_run(folder, tmp_path / "debug_cpu", "cpu", (train_set, test_set)),
    }
    with emulated_device() as device:
        other = {
            "pipnet": tiny_pipnet_run(tmp_path / "pipnet_dev", device),
            "debug": tiny_debug_run(folder, tmp_path / "debug_dev", device, (train_set, test_set)),
        }
    assert_same(cpu, other)


# --- the GPU check script ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_gpu_check_runs_against_itself_on_the_cpu_with_exact_parity(tmp_path: Path) -> None:
    """``bench.device_check`` is run by people with a GPU, rarely: run it here with the CPU on both
    sides so that it keeps working (parity within float rounding, every figure present)."""
    import json

    from bench.device_check import TOLERANCE, main

    out = tmp_path / "check.json"
    assert main(["--device", "cpu", "--images", "6", "--models", "synthetic", "--no-train",
                 "--out", str(out)]) == 0  # fmt: skip
    record = json.loads(out.read_text())
    (row,) = record["models"]
    assert row["parity_ok"] and max(row["parity"].values()) <= TOLERANCE / 100
    assert set(row["speedup"]) == {"scores", "attributes", "explain"}
    assert all(v > 0 for v in row["speedup"].values())


@needs_no_gpu
def test_the_gpu_check_without_a_gpu_says_so_in_one_line(capsys: pytest.CaptureFixture) -> None:
    from bench.device_check import main

    assert main(["--models", "synthetic"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0]
