"""Training on several processes (``torchrun``) with ``DistributedDataParallel``.

The trainer (:mod:`mofa_bench.training.trainer`) calls :func:`setup_distributed` once;
when ``torchrun`` started the process (its ``WORLD_SIZE`` > 1) it joins the process
group — ``nccl`` on CUDA, ``gloo`` on the CPU — and each rank trains on its own device
(``cuda:<LOCAL_RANK>``). Without ``torchrun`` everything here is a no-op and training is
the single-process loop.

The contract of a multi-process run:

- ``optim.batch_size`` is the **global** batch: each of the ``W`` ranks trains on
  ``batch_size / W`` samples per step (a batch not divisible by ``W`` is refused).
  Step ``s``'s global indices are the single-process ones
  (:func:`~mofa_bench.training.schedule.batch_indices`); rank ``r`` takes the ``r``-th
  contiguous slice (:func:`rank_slice`), so the ranks' samples are disjoint, a pure
  function of ``(seed, step, rank)``, and together they are the single-process batch.
  Every loss term is a batch mean and DDP averages gradients, so a step on ``W``
  ranks is the single-process step over the same global batch (exactly so for an
  encoder without batch statistics or dropout; batch-norm layers normalise each rank's
  slice on its own).
- Rank 0 alone holds the run directory's lock, writes every file (config,
  checkpoints, CSVs, samples, figures) and validates; the others wait for it at a
  barrier. Its failures (a busy run directory, a config that differs from the
  checkpoint's) reach every rank through :func:`run_on_main`.
- Logged loss terms are averaged over the ranks (:func:`mean_over_ranks`); the decision
  to skip a non-finite batch is taken by all ranks together (:func:`all_ranks_true`).
- Resume: every rank loads the same ``last.pt``; each restores its own RNG state
  (gathered into the checkpoint by :func:`gather_rng_states`).

The face model's arrays (buffers of the decoder, which has no parameters) are neither
broadcast nor all-reduced: every rank builds them identically. Buffers of modules that
do learn (batch-norm running statistics) follow rank 0's at every step.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from mofa_bench.errors import ConfigError

__all__ = ["DistributedContext", "all_ranks_true", "barrier", "gather_rng_states", "is_main", "mean_over_ranks",
           "per_rank_batch", "rank", "rank_slice", "restore_rng_state", "run_on_main", "setup_distributed",
           "world_size", "wrap_for_ddp"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly one-process) run.

    Attributes:
        rank: global rank in ``[0, world_size)``.
        world_size: number of processes (1 without ``torchrun``).
        local_rank: rank on this machine (selects ``cuda:<local_rank>``).
        backend: ``"nccl"``, ``"gloo"``, or ``None`` for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and validates."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer (as torchrun sets it), "
                          f"got {raw!r}") from None


def setup_distributed(device: torch.device) -> tuple[DistributedContext, torch.device]:
    """Join the process group ``torchrun`` describes, and pick this rank's device.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and ``MASTER_ADDR`` /
    ``MASTER_PORT`` through ``init_method="env://"``). A process group already
    initialised by the caller is used as it is. The group is destroyed at exit when
    this function created it.

    Args:
        device: the device the config resolves to (``cpu`` or ``cuda``).

    Returns:
        ``(context, device)``: on CUDA with several ranks the device is
        ``cuda:<LOCAL_RANK>`` (made current); otherwise ``device`` unchanged.

    Raises:
        ConfigError: ``device`` names one GPU (``cuda:i``) while several ranks run, or a
            rank has no GPU of its own (``LOCAL_RANK`` ≥ the number of visible GPUs).
    """
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        local = _env_int("LOCAL_RANK", rank)
        backend = str(dist.get_backend())
    else:
        world = _env_int("WORLD_SIZE", 1)
        if world <= 1:
            return DistributedContext(), device
        if not dist.is_available():
            raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
        rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
        backend = "nccl" if device.type == "cuda" else "gloo"
    if world > 1 and device.type == "cuda":
        if device.index is not None and device.index != local:
            raise ConfigError(f"device: {device} names one GPU, but {world} ranks train together; use "
                              f"device: cuda (or auto): rank r trains on cuda:<LOCAL_RANK>")
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local} has no GPU: {torch.cuda.device_count()} visible; start at most "
                              f"that many processes per machine (torchrun --nproc_per_node)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                device_id=device if device.type == "cuda" else None)
        atexit.register(_destroy)
        logger.info("process group %s: rank %d of %d on %s", backend, rank, world, device)
    return DistributedContext(rank, world, local, backend), device


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _enabled() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if _enabled() else 0


def world_size() -> int:
    """Number of training processes (1 without a process group)."""
    return dist.get_world_size() if _enabled() else 1


def is_main() -> bool:
    """Whether this is rank 0 (always true for a single process)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op for a single process)."""
    if _enabled():
        dist.barrier()


def per_rank_batch(global_batch: int, world: int) -> int:
    """Samples per rank of a global batch.

    Raises:
        ConfigError: ``global_batch`` is not a multiple of ``world``.
    """
    if global_batch % world:
        raise ConfigError(f"optim.batch_size: the global batch ({global_batch}) must be divisible by the number "
                          f"of processes ({world}); each rank trains on batch_size / {world} samples")
    return global_batch // world


def rank_slice(indices: torch.Tensor, rank_: int, world: int) -> torch.Tensor:
    """Rank ``rank_``'s contiguous share of a global batch's ``(B,)`` indices (``B / world`` of them)."""
    per = per_rank_batch(len(indices), world)
    return indices[rank_ * per:(rank_ + 1) * per]


def _reduce_device() -> torch.device:
    """Where collective tensors live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_ranks_true(flag: bool) -> bool:
    """Whether ``flag`` holds on every rank (a collective: every rank must call it)."""
    if not _enabled():
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_reduce_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The ranks' mean of each named scalar (a collective; every rank passes the same keys, in order)."""
    if not _enabled() or not values:
        return dict(values)
    keys = list(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor /= dist.get_world_size()
    return dict(zip(keys, tensor.cpu().tolist()))


def broadcast_from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (a picklable object; a collective)."""
    if not _enabled():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_on_main(fn: Callable[[], T], shared: Callable[[T], Any] = lambda value: value) -> Any:
    """Run ``fn`` on rank 0 only; every rank gets ``shared(result)`` or rank 0's exception.

    An exception on rank 0 is raised on every rank (the others get one of the same type
    and message), so no rank waits forever for a rank that has stopped.

    Args:
        fn: the work (e.g. take the run directory's lock and prepare it).
        shared: what of the result the other ranks receive (picklable; default all).

    Returns:
        ``fn()`` on rank 0 itself; ``shared(fn())`` on the other ranks.
    """
    if not _enabled():
        return fn()
    if not is_main():
        ok, value = broadcast_from_main(None)
        if not ok:
            raise value
        return value
    try:
        result = fn()
    except Exception as err:  # noqa: BLE001 - re-raised here, after the other ranks heard of it
        broadcast_from_main((False, _portable(err)))
        raise
    broadcast_from_main((True, shared(result)))
    return result


def _portable(err: Exception) -> Exception:
    """An exception the other ranks can unpickle (its type when that round-trips, else RuntimeError)."""
    import pickle

    try:
        clone = pickle.loads(pickle.dumps(err))
    except Exception:  # noqa: BLE001 - any pickling failure
        clone = RuntimeError(f"rank 0 stopped: {type(err).__name__}: {err}")
    return clone


def gather_rng_states(device: torch.device) -> list[dict[str, torch.Tensor]] | None:
    """Every rank's RNG states (a collective), for a checkpoint; ``None`` for a single process.

    Returns:
        On every rank: a list indexed by rank of ``{"cpu": uint8 state, "cuda": uint8
        state of the rank's own GPU}`` (``"cuda"`` only on CUDA), on the CPU.
    """
    if not _enabled():
        return None
    own = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        own["cuda"] = torch.cuda.get_rng_state(device)
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, own)
    return states


def restore_rng_state(states: Any, device: torch.device) -> bool:
    """Restore this rank's entry of :func:`gather_rng_states`'s list.

    Returns:
        ``True`` when restored; ``False`` when the checkpoint has no entry for this
        rank (written by a run with another number of ranks): the rank's stream then
        stays as seeded, and training continues (not bit-for-bit).
    """
    index = rank()
    if not isinstance(states, (list, tuple)) or len(states) != world_size() or not isinstance(states[index], dict):
        logger.warning("the checkpoint holds no RNG state for rank %d of %d (written by another number of ranks); "
                       "this rank's random stream restarts from its seed", index, world_size())
        return False
    own = states[index]
    torch.set_rng_state(own["cpu"])
    if device.type == "cuda" and isinstance(own.get("cuda"), torch.Tensor):
        torch.cuda.set_rng_state(own["cuda"], device)
    return True


class _LossModule(nn.Module):
    """``forward(batch) = method.loss_terms(batch)``: DDP's hooks need the loss computed in ``forward``."""

    def __init__(self, method: nn.Module, loss_fn: Callable[[Any], dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.method = method
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.loss_fn(batch)


def wrap_for_ddp(method: nn.Module, loss_fn: Callable[[Any], dict[str, torch.Tensor]],
                 device: torch.device) -> Callable[[Any], dict[str, torch.Tensor]]:
    """``batch -> loss terms`` whose backward all-reduces (averages) the method's gradients.

    Buffers of modules without trainable parameters of their own (the decoder's face
    model arrays) are left out of DDP's broadcasts; the others (batch-norm statistics)
    are broadcast from rank 0 before each forward.

    Args:
        method: the trained :class:`~mofa_bench.methods.base.Method`, on ``device``.
        loss_fn: ``batch -> terms`` (``method.loss_terms``, or its compiled version).
        device: this rank's device.
    """
    from torch.nn.parallel import DistributedDataParallel

    module = _LossModule(method, loss_fn)
    ignored = []
    for name, owner in module.named_modules():
        if not any(p.requires_grad for p in owner.parameters(recurse=False)):
            ignored += [f"{name}.{b}" if name else b for b, _ in owner.named_buffers(recurse=False)]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignored)
    ddp = DistributedDataParallel(module, device_ids=None, broadcast_buffers=True)
    logger.info("DDP on %s: %d buffers kept local (face model arrays)", device, len(ignored))
    return ddp
