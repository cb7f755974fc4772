"""`--device` reaches the cluster's model actors, and GPUs are asked of Ray only for a GPU device.

A head node that tells Ray it has a GPU, on a machine without one, shows where each actor's runtime
went: an actor told to use the GPU plans CUDA, which this onnxruntime (and torch) cannot drive, and
fails the run; actors told `--device cpu` never ask for the GPU and index as a local run does.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoseek import ImageIndex
from photoseek.models.device import DeviceError, parse_device
from tests.distributed.conftest import free_port, start_head
from tests.distributed.test_ray_indexing import _assert_same, _text_signals
from tests.helpers import run_cli, run_json, three_colour_photos

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def fake_gpu_cluster() -> Iterator[str]:
    """A two-CPU head node that offers Ray one GPU this machine does not have."""
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="photoseek-rayg-"))  # short: Ray's socket paths stay under 108 bytes
    head, address = start_head(temp, "--num-gpus", "1")
    yield address
    head.stop()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return three_colour_photos(tmp_path / "photos")


def test_cpu_reaches_the_actors_on_a_cluster_with_a_gpu(
    fake_gpu_cluster: str, photos: Path, tmp_path: Path, tiny_clip_dir: Path, tiny_blip_dir: Path
) -> None:
    """Embedding and captioning actors both run on the CPU: none asks for the GPU, none plans CUDA."""
    args = ["--model-path", tiny_clip_dir, "--caption-model", tiny_blip_dir, "--device", "cpu"]
    remote = run_json("index", photos, "--db", tmp_path / "ray.db", *args, "--ray", fake_gpu_cluster)
    local = run_json("index", photos, "--db", tmp_path / "local.db", *args)
    assert remote["failed"] == local["failed"] == []
    assert remote["signals"] == local["signals"] == {"caption": 3}
    _assert_same(tmp_path / "ray.db", tmp_path / "local.db")
    assert _text_signals(tmp_path / "ray.db") == _text_signals(tmp_path / "local.db")


def test_auto_puts_the_actors_on_the_clusters_gpu(fake_gpu_cluster: str, photos: Path, tmp_path: Path,
                                                   tiny_clip_dir: Path) -> None:
    """auto on a cluster with a GPU: the embedding actor gets it and plans CUDA (here, in vain)."""
    output = run_cli("index", photos, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir,
                     "--ray", fake_gpu_cluster, expect=1)
    assert "The Ray job failed" in output and "CUDAExecutionProvider" in output, output


def test_an_unknown_device_is_one_line_before_the_cluster_is_asked(photos: Path, tmp_path: Path,
                                                                  tiny_clip_dir: Path) -> None:
    """No cluster answers at this address: the device is refused before any connection."""
    output = run_cli("index", photos, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir,
                     "--ray", f"127.0.0.1:{free_port()}", "--device", "gpu9", expect=2)
    assert "Unknown device 'gpu9'" in output and len(output.strip().splitlines()) == 1, output


def test_cuda_on_a_cluster_without_gpus_fails_before_any_work(
    ray_cluster: str, photos: Path, tmp_path: Path, tiny_clip_dir: Path
) -> None:
    from photoseek.distributed import on_cluster

    with ImageIndex(tmp_path / "c.db", model_path=tiny_clip_dir, device="cpu") as index:
        with pytest.raises(DeviceError, match=r"--device cuda:1: the Ray cluster has no GPUs\. .*--device cpu"):
            with on_cluster(ray_cluster, index.model, [photos], tmp_path / "c.db", device="cuda:1"):
                pytest.fail("the cluster was used")


def test_actors_ask_for_gpus_only_when_the_device_is_a_gpu() -> None:
    from photoseek.distributed.devices import ActorDevice, actor_device

    gpu_cluster, cpu_cluster = {"CPU": 64, "GPU": 4}, {"CPU": 64}
    assert actor_device(parse_device("cpu"), gpu_cluster) == ActorDevice("cpu", 0)
    assert actor_device(parse_device("coreml"), gpu_cluster) == ActorDevice("coreml", 0)
    assert actor_device(parse_device("cuda:1"), gpu_cluster) == ActorDevice("cuda", 4)  # Ray picks each GPU
    assert actor_device(parse_device("auto"), gpu_cluster) == ActorDevice("cuda", 4)
    assert actor_device(parse_device("auto"), cpu_cluster) == ActorDevice("cpu", 0)
    on_gpus = ActorDevice("cuda", 4)
    assert (on_gpus.for_pool(True), on_gpus.for_pool(False)) == ("cuda", "cpu")  # OCR's pool has no GPU
    assert ActorDevice("coreml", 0).for_pool(False) == "coreml"
