"""Many processes, one run: PyTorch's own distributed engine (``torch.distributed``, ``torchrun``).

``torchrun --nproc_per_node N -m noizenet train ...`` starts N copies of the same command and
tells each, through environment variables, who it is: ``RANK`` (0 to ``WORLD_SIZE`` - 1 over
all nodes), ``LOCAL_RANK`` (on its node), ``WORLD_SIZE``, and where to meet (``MASTER_ADDR``,
``MASTER_PORT``, set by torchrun's rendezvous). Without ``WORLD_SIZE`` > 1 nothing here starts
a process group, and training is the single process it always was.

How a distributed run divides the work (:class:`~noizenet.train.trainer.Trainer` does it):

- the global batch of B streams is one plan (:class:`~noizenet.train.streams.Streams`, a pure
  function of the seed and epoch); rank r trains streams r, r + W, r + 2W, ... and carries their
  hidden state;
- each rank's loss is its masked sum divided by the GLOBAL number of samples in the step, and
  gradients are summed over ranks (one ``all_reduce`` per step, which also carries the loss and
  the stop flag), so the update is exactly the single-process update on the whole batch;
- clipping, the NaN guard and the optimizer then act on identical reduced gradients: every rank
  takes the same decision (skip, roll back, stop) without another message;
- a checkpoint gathers every stream's state and every rank's dropout generator, so it is the
  whole run's position and resumes on any number of ranks that divides B;
- rank 0 alone writes files, logs and draws the progress bar.

Backends: gloo for CPU tensors, NCCL for CUDA tensors (one process group holds both when CUDA
is present; each collective goes to the backend of its tensors' device).

This module imports torch lazily: :func:`env_rank` is read by the command line before torch is.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from noizenet.errors import ConfigError, NoizeNetError


def env_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""

    def number(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default

    return number("RANK", 0), max(number("WORLD_SIZE", 1), 1), number("LOCAL_RANK", 0)


@dataclass(frozen=True)
class Dist:
    """This process's place in the run. ``world == 1``: no process group, no collectives."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and talks to the user."""
        return self.rank == 0

    # -- collectives (no-ops in a single process) -------------------------------------------------
    def all_reduce_sum(self, t: Any) -> Any:
        """Sum ``t`` over ranks in place (and return it)."""
        if self.enabled:
            import torch.distributed as torch_dist

            torch_dist.all_reduce(t)
        return t

    def broadcast_tensor(self, t: Any) -> Any:
        """Rank 0's values of ``t`` on every rank, in place."""
        if self.enabled:
            import torch.distributed as torch_dist

            torch_dist.broadcast(t, src=0)
        return t

    def gather_streams(self, t: Any, dim: int) -> Any:
        """Every rank's ``t`` with B / world streams along axis ``dim`` -> the global tensor
        with B streams there (the axis the model declares, ``state_stream_dims``).

        Rank r holds global streams r, r + W, ...: local stream i is global stream i * W + r.
        """
        if not self.enabled:
            return t
        import torch
        import torch.distributed as torch_dist

        parts = [torch.empty_like(t) for _ in range(self.world)]
        torch_dist.all_gather(parts, t.contiguous())
        stacked = torch.stack(parts, dim=dim + 1)  # (..., B / world, world, ...)
        return stacked.flatten(dim, dim + 1)

    def my_streams(self, t: Any, dim: int) -> Any:
        """This rank's streams of a global tensor with its B streams along axis ``dim``."""
        if not self.enabled:
            return t
        index = [slice(None)] * t.dim()
        index[dim] = slice(self.rank, None, self.world)
        return t[tuple(index)].contiguous()

    def gather_rows(self, t: Any) -> Any:
        """Every rank's ``t`` stacked: (world, ...), in rank order."""
        import torch

        if not self.enabled:
            return t.unsqueeze(0)
        import torch.distributed as torch_dist

        parts = [torch.empty_like(t) for _ in range(self.world)]
        torch_dist.all_gather(parts, t.contiguous())
        return torch.stack(parts)

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """Rank 0's ``data`` on every rank (others pass None). CPU tensors: always gloo."""
        if not self.enabled:
            assert data is not None
            return data
        import torch
        import torch.distributed as torch_dist

        size = torch.tensor([len(data) if self.main and data is not None else 0])
        torch_dist.broadcast(size, src=0)
        n = int(size)
        if n == 0:
            return b""
        if self.main:
            buf = torch.frombuffer(bytearray(data or b""), dtype=torch.uint8)
        else:
            buf = torch.empty(n, dtype=torch.uint8)
        torch_dist.broadcast(buf, src=0)
        return bytes(buf.numpy())

    def broadcast_json(self, obj: Any = None) -> Any:
        """Rank 0's JSON-able ``obj`` on every rank."""
        if not self.enabled:
            return obj
        text = json.dumps(obj).encode() if self.main else None
        return json.loads(self.broadcast_bytes(text).decode())

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as torch_dist

            torch_dist.barrier()


SINGLE = Dist()


@contextlib.contextmanager
def process_group() -> Iterator[Dist]:
    """Join the run torchrun started (``WORLD_SIZE`` > 1), and leave it on the way out, also after
    an error; a single process yields :data:`SINGLE` and starts nothing.

    Under CUDA every rank first makes ``cuda:LOCAL_RANK`` its current device, so NCCL and the
    model agree on which GPU is this rank's.
    """
    rank, world, local_rank = env_rank()
    if world == 1:
        yield SINGLE
        return
    import torch
    import torch.distributed as torch_dist

    if not torch_dist.is_available():
        raise NoizeNetError("this PyTorch build has no torch.distributed; run one process")
    if torch_dist.is_initialized():  # the caller runs its own process group: use it
        yield Dist(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank)
        return
    # torch._dynamo, which torch.optim imports on first use, keeps references to a process group
    # that exists when it is imported: destroy_process_group would then leave the group and its
    # gloo worker threads alive until interpreter shutdown, where a worker still freeing its last
    # collective's tensors (which needs the GIL) aborts the process ("terminate called without an
    # active exception", SIGABRT). Imported before the group exists, it holds none, and leaving
    # the group ends its threads.
    import torch._dynamo

    backend = "gloo"
    if torch.cuda.is_available() and torch_dist.is_nccl_available():
        if local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"
    torch_dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        yield Dist(rank, world, local_rank)
    finally:
        torch_dist.destroy_process_group()


def pick_device(name: str = "auto") -> Any:
    """``auto``: CUDA, then Apple MPS, then CPU. A device this machine lacks is a one-line
    :class:`~noizenet.errors.NoizeNetError`, not a crash at the first step."""
    import torch

    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps:
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NoizeNetError(f"train.device: unknown device {name!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise NoizeNetError(
                f"train.device: {name} is not available on this machine "
                f"({count} CUDA devices); use --device auto or cpu"
            )
    elif device.type == "mps" and not mps:
        raise NoizeNetError("train.device: mps is not available on this machine; use auto or cpu")
    return device


def rank_device(name: str, dist: Dist) -> Any:
    """The device this rank trains on.

    One process: :func:`pick_device`. Several: ``auto`` and ``cuda`` mean
    ``cuda:LOCAL_RANK`` (one GPU per process, as torchrun starts them), ``auto`` without CUDA
    means the CPU; naming one GPU (``cuda:N``) or ``mps`` is refused, since every rank would
    take the same device.
    """
    import torch

    if not dist.enabled:
        return pick_device(name)
    if name in ("auto", "cuda"):
        if not torch.cuda.is_available():
            if name == "cuda":
                pick_device("cuda")  # the one-line "not available" error
            return torch.device("cpu")
        count = torch.cuda.device_count()
        if dist.local_rank >= count:
            raise ConfigError(
                f"train.device: rank {dist.rank} is local rank {dist.local_rank} but this node "
                f"has {count} GPUs; start at most {count} processes per node (--nproc_per_node)"
            )
        return torch.device("cuda", dist.local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(
        f"train.device: {name} under torchrun would put every rank on one device; use "
        "--device cuda (each rank takes cuda:LOCAL_RANK) or cpu"
    )
