"""Distributed data-parallel training through PyTorch DDP, launched by ``torchrun``.

``torchrun --nproc-per-node N -m socialav.cli train CONFIG`` (or ``python -m
torch.distributed.run ...``) starts N processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; multi-node runs add ``--nnodes`` and a
rendezvous endpoint (see the torchrun documentation). :func:`init_distributed` reads those
variables and joins the process group with ``nccl`` on CUDA and ``gloo`` on CPU. Without them
training runs in a single process and none of this is used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

__all__ = [
    "DistributedContext",
    "resolve_device",
    "init_distributed",
    "shutdown_distributed",
    "all_reduce_sum",
    "barrier",
    "broadcast_buffers",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands.

    Attributes:
        rank, world_size, local_rank: from torchrun's environment (0, 1, 0 when alone).
        device: this process's device (``cuda:<local_rank>`` under torchrun on GPUs).
        backend: ``nccl``, ``gloo`` or ``None`` (single process).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; ``cuda`` ->
    ``cuda:<local_rank>``; anything else as given.

    Raises:
        ValueError: CUDA requested but not available.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use 'cpu'")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``).

    Args:
        device: the configured device (see :func:`resolve_device`).

    Returns:
        The :class:`DistributedContext` of this process.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(device=resolved)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    logger.info("rank %d/%d on %s (%s)", rank, world_size, resolved, backend)
    return DistributedContext(rank, world_size, local_rank, resolved, backend)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], context: DistributedContext) -> list[float]:
    """Sum a list of floats over all processes (identity for a single process)."""
    if not context.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def broadcast_buffers(module: torch.nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every process.

    DDP broadcasts buffers at the start of each forward, so after the last step of an epoch
    each rank holds the statistics of its own last batch; this makes them identical.
    """
    if context.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def barrier(context: DistributedContext) -> None:
    """Wait for every process (no-op for a single process)."""
    if context.distributed:
        dist.barrier()
