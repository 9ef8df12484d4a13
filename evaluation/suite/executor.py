"""Where a suite's runs execute: here one after another, or as submitit jobs.

- ``local``: :func:`~evaluation.suite.run.run_task` for each run in this process, in order;
  the suite's bar shows where the running run is (drawing faces, training step and loss,
  testing, time left), from its :class:`~mofa_bench.progress.Progress` counters.
- ``slurm``: one Slurm array job through submitit's ``AutoExecutor(cluster="slurm")`` with
  the suite's ``slurm:`` options; this process waits and collects as jobs finish.
- ``local_submitit``: submitit's ``LocalExecutor``, one subprocess per run, all at once
  (``timeout_min`` from ``slurm:``, default 60; ``gpus_per_node`` default 0).

Job logs and pickles go to ``<out>/submitit/``. A job that dies without recording its end
(killed, timed out) gets status ``error`` with submitit's reason. ``on_result(task, row)``
is called after every run, in completion order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evaluation.results.rows import error_note
from evaluation.suite.collect import base_row, read_run_row
from evaluation.suite.run import RunTask, read_status, run_task, write_json
from mofa_bench.errors import ConfigError
from mofa_bench.methods import MethodBuilder
from mofa_bench.progress import Listener, ProgressUpdate, listen

__all__ = ["LOCAL_SUBMITIT_TIMEOUT_MIN", "POLL_S", "execute"]

#: Time limit of a ``local_submitit`` job unless ``slurm.timeout_min`` says otherwise, minutes.
LOCAL_SUBMITIT_TIMEOUT_MIN = 60
#: Seconds between checks of submitted jobs.
POLL_S = 1.0

OnResult = Callable[[RunTask, dict[str, Any]], None]


def execute(tasks: Sequence[RunTask], executor: str, folder: str | Path, options: Mapping[str, Any],
            on_result: OnResult, progress: bool = True,
            builders: Mapping[str, MethodBuilder] | None = None) -> None:
    """Run every task with ``executor`` (see the module docstring).

    Args:
        tasks: the runs to execute.
        executor: ``local``, ``slurm`` or ``local_submitit``.
        folder: submitit's folder (jobs' logs and pickles).
        options: the suite's ``slurm:`` options.
        on_result: called with each task and its results row as it finishes.
        progress: show a progress bar over the runs.
        builders: method builders used before the built-in ones (``local`` only: jobs in
            other processes build methods by name).

    Raises:
        ConfigError: unknown executor, builders given to a submitit executor, or options
            submitit refuses.
    """
    from tqdm.auto import tqdm

    if not tasks:
        return
    bar = tqdm(total=len(tasks), desc="suite", unit="run", disable=not progress, dynamic_ncols=True)
    try:
        if executor == "local":
            for task in tasks:
                bar.set_postfix_str(task.cell.run_id)
                with listen(_postfix_writer(bar, task.cell.run_id)):
                    row = run_task(task, builders)
                on_result(task, row)
                bar.update(1)
            return
        if builders:
            raise ConfigError(f"executor: {executor} runs jobs in other processes, which build methods by name; "
                              f"method builders passed in work with the local executor only")
        jobs = _submit(tasks, executor, Path(folder), options)
        pending = list(zip(tasks, jobs))
        while pending:
            still = []
            for task, job in pending:
                if not job.done():
                    still.append((task, job))
                    continue
                on_result(task, _job_row(task, job))
                bar.update(1)
            pending = still
            if pending:
                time.sleep(POLL_S)
    finally:
        bar.close()


def _postfix_writer(bar: Any, run_id: str) -> Listener:
    """A listener that shows the running run's progress after its id in the suite's bar."""
    def write(update: ProgressUpdate) -> None:
        bar.set_postfix_str(f"{run_id}: {update.describe()}")

    return write


def _submit(tasks: Sequence[RunTask], executor: str, folder: Path, options: Mapping[str, Any]) -> list[Any]:
    import submitit

    if executor not in ("slurm", "local_submitit"):
        raise ConfigError(f"executor: expected local, slurm or local_submitit, got {executor!r}")
    try:
        if executor == "slurm":
            ex: Any = submitit.AutoExecutor(folder=folder, cluster="slurm")
            params = dict(options)
        else:
            ex = submitit.LocalExecutor(folder=folder)
            params = {"timeout_min": options.get("timeout_min", LOCAL_SUBMITIT_TIMEOUT_MIN),
                      "gpus_per_node": options.get("gpus_per_node", 0)}
    except (OSError, RuntimeError) as err:  # no Slurm here (submitit finds no srun)
        raise ConfigError(f"executor: {executor}: {err}") from err
    try:
        ex.update_parameters(**params)
    except (NameError, ValueError, AssertionError) as err:
        raise ConfigError(f"slurm: submitit refused the options: {err}") from err
    try:
        return list(ex.map_array(run_task, list(tasks)))
    except (OSError, RuntimeError) as err:  # sbatch failed or refused the jobs
        raise ConfigError(f"executor: {executor}: submitting the runs failed ({type(err).__name__}: {err})") from err


def _job_row(task: RunTask, job: Any) -> dict[str, Any]:
    """The row a finished job returned, or an error row when the job died."""
    try:
        return job.result()
    except Exception as err:  # submitit raises its own job errors (FailedJobError, UncompletedJobError, ...)
        try:
            state = read_status(task.run_dir) or {}
        except ValueError:  # cut short by the dying job: its row says so below
            state = {}
        if state.get("status") in ("ok", "error"):
            row = read_run_row(task.run_dir)
            if row is not None:
                return row
        message = f"submitit job {getattr(job, 'job_id', '?')} failed: {error_note(err)}"
        run_dir = Path(task.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        record = task.cell.record()
        write_json(run_dir / "cell.json", record)
        write_json(run_dir / "status.json", {"status": "error", "error": message, "started": state.get("started"),
                                             "finished": None})
        row = base_row(record, "error", message[:300])
        write_json(run_dir / "result.json", row)
        return row
