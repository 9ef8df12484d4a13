"""A training process for the kill-and-resume tests, which can SIGKILL itself at a chosen point.

Usage: ``python train_child.py ROOT MODEL NAME RESUME KILL`` where ``KILL`` is ``none`` or
``<point>:<n>``, the n-th time (1-based) the point is reached:

- ``row``: right after a row is appended to a CSV log;
- ``save``: inside ``torch.save`` of a checkpoint, after half of its bytes are written
  (a temp file is left behind);
- ``replace``: just before a finished checkpoint is renamed over the previous one (its
  hash file already lists both digests).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).parents[1]))  # tests/: helpers

from kill_points import Countdown, kill_after_rows, kill_before_replace  # noqa: E402 - beside this file

#: The tiny run: six steps, a checkpoint and a validation every two.
OVERRIDES = ("optim.iterations=6", "checkpoint_every=2", "val_every=2", "sample_every=6", "log_every=1",
             "data.train_size=8", "data.val_size=2")


def _killer(point: str, n: int):
    import torch

    import mofa_bench.checkpoint as checkpoint

    countdown = Countdown(n)
    if point == "row":
        kill_after_rows(countdown)
    elif point == "save":
        save = torch.save

        def partial_save(obj, handle, *args, **kwargs):
            if countdown.due:
                buffer = io.BytesIO()
                save(obj, buffer)
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                handle.flush()
            countdown()
            save(obj, handle, *args, **kwargs)

        checkpoint.torch.save = partial_save
    elif point == "replace":
        kill_before_replace(countdown, lambda dst: dst.endswith(".pt"))
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main(root: str, model: str, name: str, resume: str, kill: str) -> None:
    from mofa_bench.scoring.validation import validate
    from helpers import tiny_train_config
    from mofa_bench.training import Trainer

    if kill != "none":
        point, n = kill.split(":")
        _killer(point, int(n))
    config = tiny_train_config(Path(root), Path(model), *OVERRIDES, name=name)
    Trainer(config, validator=validate).fit(resume=resume == "1")


if __name__ == "__main__":
    main(*sys.argv[1:])
