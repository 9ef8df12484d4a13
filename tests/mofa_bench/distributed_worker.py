"""One rank of a small multi-process training, started by ``torchrun`` from test_distributed.py.

Usage: ``python -m torch.distributed.run --nproc_per_node 2 distributed_worker.py OUT MODEL SCENARIO``

Scenarios (each trains the tiny config of :func:`helpers.tiny_train_config` in ``OUT/run``):

- ``resume``: 2 steps, then a new trainer resumes the run to 4 steps;
- ``nonfinite``: 3 steps where rank 1's loss at step 2 is NaN (every rank must skip it);
- ``collectives``: no training: the helpers of :mod:`mofa_bench.training.distributed`
  (``OUT/rank<r>.pt`` then holds what each returned).

Each rank writes ``OUT/rank<r>.pt``: its method's state dict, the dataset indices it trained
on per step, and every file write the trainer asked for (CSV rows, checkpoints).
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_TESTS), str(_TESTS.parent)]  # helpers; the repository before tests/mofa_bench

import torch  # noqa: E402

from helpers import tiny_train_config  # noqa: E402

#: The encoder and optimiser of the equivalence check: AlexNet has no batch statistics
#: (its dropout is switched off by :func:`no_dropout`), and AdaDelta's update is a
#: continuous function of the gradient (Adam's first step is the gradient's sign).
OVERRIDES = ("encoder.name=alexnet", "optim.optimizer=adadelta", "optim.lr=0.1", "optim.batch_size=4",
             "data.train_size=16")


def ddp_rank_seed() -> int:
    """A different seed on each rank (torchrun's ``RANK``)."""
    import os

    return 1 + int(os.environ.get("RANK", "0"))


def no_dropout(trainer) -> None:
    """Switch off the encoder's dropout (a random mask per rank cannot match one process)."""
    for module in trainer.method.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def collectives(out: Path) -> None:
    """Each helper once, on the CPU with gloo; rank 0's errors must reach rank 1."""
    from mofa_bench.errors import ConfigError
    from mofa_bench.training import distributed as ddp

    context, device = ddp.setup_distributed(torch.device("cpu"))
    rank = context.rank
    result: dict = {"context": (context.rank, context.world_size, context.backend), "device": str(device)}
    result["mean"] = ddp.mean_over_ranks({"loss": float(rank), "other": 10.0 * rank + 1})
    result["all_true_mixed"] = ddp.all_ranks_true(rank == 0)
    result["all_true"] = ddp.all_ranks_true(True)
    result["shared"] = ddp.run_on_main(lambda: {"from": ddp.rank()}, shared=lambda value: value["from"])

    def fails() -> None:
        raise ConfigError("run directory busy (raised on rank 0)")

    try:
        ddp.run_on_main(fails)
    except ConfigError as err:
        result["error"] = f"{type(err).__name__}: {err}"
    states = ddp.gather_rng_states(device)
    result["rng_states_differ"] = not torch.equal(states[0]["cpu"], states[1]["cpu"])
    result["slice"] = ddp.rank_slice(torch.arange(10, 14), rank, ddp.world_size()).tolist()
    torch.save(result, out / f"rank{rank}.pt")


def main(out: Path, model: Path, scenario: str) -> None:
    if scenario == "collectives":
        torch.manual_seed(ddp_rank_seed())
        return collectives(out)
    import mofa_bench.training.trainer as trainer_module
    from mofa_bench.scoring.validation import validate
    from mofa_bench.training import distributed as ddp

    writes: list[str] = []
    append_row, save_checkpoint = trainer_module.append_row, trainer_module.save_checkpoint
    trainer_module.append_row = lambda path, row: (writes.append(f"row {path.name}"), append_row(path, row))[1]
    trainer_module.save_checkpoint = lambda state, path: (writes.append(f"checkpoint {Path(path).name}"),
                                                          save_checkpoint(state, path))[1]
    seen: dict[int, list[int]] = {}

    def build(iterations: int):
        config = tiny_train_config(out, model, *OVERRIDES, f"optim.iterations={iterations}", name="run")
        trainer = trainer_module.Trainer(config, validator=validate)
        no_dropout(trainer)
        batch = trainer.train_data.batch

        def recorded(indices):
            seen[trainer.step + 1] = indices.tolist()
            return batch(indices)

        trainer.train_data.batch = recorded
        return trainer

    if scenario == "resume":
        build(2).fit()
        trainer = build(4)
        result = trainer.fit(resume=True)
    elif scenario == "nonfinite":
        trainer = build(3)
        loss_fn = trainer.loss_fn

        def poisoned(batch):
            terms = loss_fn(batch)
            if trainer.dist.rank == 1 and trainer.step == 1:
                terms = {**terms, "total": terms["total"] * float("nan")}
            return terms

        trainer.loss_fn = poisoned
        result = trainer.fit()
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    rank = ddp.rank()
    torch.save({"state": trainer.method.state_dict(), "seen": seen, "writes": writes, "rank": rank,
                "world": ddp.world_size(), "steps": result.steps, "validation": result.validation,
                "final_loss": result.final_loss, "skipped": result.skipped, "device": str(trainer.device)},
               out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
