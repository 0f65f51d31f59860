"""The processes ``torchrun`` starts: the process group, each rank's device, and the few
collectives the training loop needs around the step (broadcasts from rank 0, gradient
averages, a shared verdict on non-finite losses, gathering evaluation embeddings).

Without torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) :func:`runtime_from_env`
returns the single-process :data:`SINGLE` and nothing here communicates.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from gcahng.errors import ConfigError, GcahngError

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
#: How long a collective waits for the other ranks before it fails (a rank that died is
#: noticed sooner: torchrun stops the whole group when one worker exits).
COLLECTIVE_TIMEOUT = timedelta(minutes=30)
T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    """This process's place in the run: ``rank`` of ``world_size`` processes, ``local_rank``
    on its machine (it chooses the GPU). ``distributed`` is True when torchrun started it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder, the logs and the tables."""
        return self.rank == 0


SINGLE = Runtime()


def runtime_from_env(environ: Mapping[str, str] = os.environ) -> Runtime:
    """The :class:`Runtime` torchrun describes in ``environ``, or :data:`SINGLE` outside torchrun."""
    if not all(name in environ for name in TORCHRUN_ENV):
        return SINGLE
    try:
        rank, world_size, local_rank = (int(environ[name]) for name in TORCHRUN_ENV)
    except ValueError:
        shown = ", ".join(f"{name}={environ[name]!r}" for name in TORCHRUN_ENV)
        raise ConfigError(f"torchrun's environment is not integers: {shown}") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ConfigError(f"torchrun's environment is inconsistent: RANK={rank}, WORLD_SIZE={world_size}, "
                          f"LOCAL_RANK={local_rank}")
    return Runtime(rank, world_size, local_rank, distributed=True)


def restart_warning(environ: Mapping[str, str] = os.environ) -> str | None:
    """A warning when torchrun may restart the workers (``--max-restarts``) while sharing its
    rendezvous store with them: the restarted group then finds the previous group's keys and
    hangs or fails in ``init_process_group`` (pytorch/pytorch#135712)."""
    shared = environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    if not shared or int(environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) == 0:
        return None
    return ("warning: torchrun --max-restarts with its shared rendezvous store cannot restart the workers "
            "(pytorch/pytorch#135712); start torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in its environment")


def rank_device(runtime: Runtime, device: torch.device) -> torch.device:
    """``device`` for this rank: under torchrun a CUDA device is ``cuda:LOCAL_RANK``."""
    if not runtime.distributed or device.type != "cuda":
        return device
    if device.index is not None and device.index != runtime.local_rank:
        raise ConfigError(f"--device {device} under torchrun: LOCAL_RANK chooses each process's GPU; "
                          "use --device cuda (or auto)")
    if runtime.local_rank >= torch.cuda.device_count():
        raise ConfigError(f"LOCAL_RANK={runtime.local_rank} but this machine has {torch.cuda.device_count()} "
                          "CUDA device(s); start at most that many processes per node")
    return torch.device("cuda", runtime.local_rank)


@contextmanager
def process_group(runtime: Runtime, device: torch.device) -> Iterator[None]:
    """The default process group for the ``with`` block: NCCL on CUDA, gloo on the CPU
    (torchrun's ``MASTER_ADDR``/``MASTER_PORT`` rendezvous). Nothing outside torchrun."""
    if not runtime.distributed:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=runtime.rank, world_size=runtime.world_size,
                            timeout=COLLECTIVE_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def broadcast(runtime: Runtime, value: T | None) -> T:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not runtime.distributed:
        return value  # type: ignore[return-value]
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(runtime: Runtime, work: Callable[[], T]) -> T:
    """``work()`` run on rank 0 only; every rank returns its result, or raises the
    :class:`GcahngError` it raised (so that all ranks fail together with one message)."""
    if not runtime.distributed:
        return work()
    outcome: tuple[Any, GcahngError | None] = (None, None)
    if runtime.is_main:
        try:
            outcome = (work(), None)
        except GcahngError as err:
            outcome = (None, err)
    result, error = broadcast(runtime, outcome)
    if error is not None:
        raise error
    return result


def barrier(runtime: Runtime) -> None:
    """Wait until every rank gets here."""
    if runtime.distributed:
        dist.barrier()


def average_gradients(module: nn.Module, group: Any = None) -> None:
    """Replace the gradients of ``module``'s parameters by their mean over the ranks (one
    flat all-reduce). Parameters without a gradient are left out; the ranks run the same
    step, so they leave out the same ones. Nothing without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=group)
    flat /= dist.get_world_size(group)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def broadcast_buffers(runtime: Runtime, module: nn.Module) -> None:
    """Copy rank 0's buffers of ``module`` (batch-norm running statistics) to every rank."""
    if runtime.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def gather_to_main(runtime: Runtime, value: T) -> list[T] | None:
    """Every rank's ``value`` (picklable) on rank 0, in rank order; ``None`` on the others."""
    if not runtime.distributed:
        return [value]
    received: list[Any] | None = [None] * runtime.world_size if runtime.is_main else None
    dist.gather_object(value, received, dst=0)
    return received


def mean_over_ranks(runtime: Runtime, values: Mapping[str, float]) -> dict[str, float]:
    """The mean over the ranks of each value (the same names on every rank)."""
    if not runtime.distributed or not values:
        return dict(values)
    names = sorted(values)
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64, device=_collective_device(None))
    dist.all_reduce(tensor)
    return {name: float(total) / runtime.world_size for name, total in zip(names, tensor.tolist(), strict=True)}


def shard(items: Sequence[T], runtime: Runtime, block: int) -> list[T]:
    """Rank ``r``'s share of ``items``: blocks ``r, r + W, r + 2W, ...`` of ``block`` items each."""
    step = block * runtime.world_size
    return [item for start in range(runtime.rank * block, len(items), step) for item in items[start : start + block]]


def _collective_device(group: Any) -> torch.device:
    """CUDA for NCCL, the CPU for gloo."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` over the default group,
    taking the parameters that require gradients now (wrap again after freezing or unfreezing
    some: DDP's list of parameters is fixed when it is built). Every wrapped parameter must get
    a gradient in each backward pass, so ``find_unused_parameters`` stays off."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
