"""Data-parallel training under ``torchrun`` (PyTorch DistributedDataParallel).

``torchrun --nproc_per_node N $(command -v afdetect) train ...`` starts N processes with
RANK, WORLD_SIZE and MASTER_ADDR in their environment; :func:`init_from_env` joins them
into a process group (gloo on CPU, NCCL when training on GPUs). Every rank draws the same
batch order, crops and gains, computes a disjoint slice of each batch, and DDP averages
the gradients, so the ranks stay identical. Rank 0 alone writes checkpoints and the model. A plain
``afdetect train`` (no torchrun) is one process and uses none of this.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Distributed(0, 1)


def rank_device(requested: str) -> torch.device:
    """Where this process trains: ``requested`` ("cpu" or "cuda"), with "cuda" under
    torchrun meaning the GPU of this rank's LOCAL_RANK.

    Raises:
        ValueError: a CUDA device was asked for and there is none (or not that one).
    """
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r}: no CUDA device is available")
        if device.index is None and "LOCAL_RANK" in os.environ:
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {requested!r}: there is no GPU {device.index} "
                             f"({torch.cuda.device_count()} visible)")
    return device


def init_from_env(device: torch.device | None = None) -> Distributed:
    """Join the process group torchrun describes in the environment; one process
    (:data:`SINGLE`) when there is none. The backend follows the training device:
    NCCL for a GPU, gloo for the CPU (a GPU machine training on its CPU included)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        if device is not None and device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl")
        else:
            dist.init_process_group(backend="gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def current() -> Distributed:
    """The group this process is in (:data:`SINGLE` without torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return Distributed(dist.get_rank(), dist.get_world_size())
    return SINGLE


def barrier() -> None:
    if current().world_size > 1:
        dist.barrier()


def weights_identical_across_ranks(model: nn.Module) -> bool:
    """Whether every rank holds the same weights (SHA-256 of the state dict, gathered)."""
    group = current()
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if group.world_size == 1:
        return True
    digests: list[str | None] = [None] * group.world_size
    dist.all_gather_object(digests, digest.hexdigest())
    return len(set(digests)) == 1


def average_buffers(model: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over the ranks: each
    rank saw its own slice of the data; afterwards all hold the same statistics."""
    group = current()
    if group.world_size == 1:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer /= group.world_size
