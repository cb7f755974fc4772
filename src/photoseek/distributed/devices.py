"""Which device the cluster's model actors run on, from the run's `--device` and the cluster's GPUs.

Every model actor builds its `Runtime` from this, as this machine's models do from `--device`; GPUs
are asked of Ray only when the models are to run on one. Ray gives each GPU actor its own GPU and
shows it as device 0, so on a cluster `cuda:N` means `cuda`: Ray, not the index, picks the GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from photoseek.models.device import Device, DeviceError


@dataclass(frozen=True)
class ActorDevice:
    """`device`: the `--device` of the actors that hold a GPU (or of every actor when `gpus` is 0);
    `gpus`: the cluster's GPUs the actors spread over (0: no actor asks Ray for one)."""

    device: str
    gpus: int

    def for_pool(self, on_gpu: bool) -> str:
        """The device of one pool's actors: a pool given no GPU runs on the CPU."""
        return self.device if on_gpu or not self.gpus else "cpu"


def actor_device(device: Device, resources: Mapping[str, float]) -> ActorDevice:
    """Where the actors run: `cpu` and `coreml` as told, never on a GPU; `cuda` on the cluster's GPUs
    (an error when it has none); `auto` on its GPUs when it has some, else on the CPU."""
    gpus = int(resources.get("GPU", 0))
    if device.kind in ("cpu", "coreml"):
        return ActorDevice(device.kind, 0)
    if device.kind == "cuda" and not gpus:
        raise DeviceError(
            f"--device {device}: the Ray cluster has no GPUs. Add GPU nodes (`ray start --num-gpus N` on "
            "each), or use --device cpu."
        )
    return ActorDevice("cuda", gpus) if gpus else ActorDevice("cpu", 0)
