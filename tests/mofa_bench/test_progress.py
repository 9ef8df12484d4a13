"""Progress counters: the tqdm-like interface, what a listener hears, and a suite bar showing a run's steps."""

from __future__ import annotations

import pytest
import yaml

from mofa_bench.progress import Progress, ProgressUpdate, labelled, listen


def _heard(total: int, steps: int, **kwargs) -> list[ProgressUpdate]:
    heard: list[ProgressUpdate] = []
    with listen(heard.append):
        with Progress(total, "train x", unit="step", show=False, min_interval_s=0.0, **kwargs) as bar:
            for _ in range(steps):
                bar.set_postfix(loss="0.5000")
                bar.update()
    return heard


def test_a_listener_hears_every_update_with_the_count_and_postfix():
    heard = _heard(4, 4)
    assert [u.done for u in heard] == [0, 1, 2, 3, 4]
    assert heard[0].remaining_s is None and heard[-1].remaining_s == 0.0
    assert heard[-1].postfix == "loss 0.5000"
    assert heard[2].describe().startswith("train x 2/4 step, loss 0.5000, ")
    assert heard[2].describe().endswith(" left")


def test_updates_are_spaced_but_the_last_one_always_arrives():
    heard: list[ProgressUpdate] = []
    with listen(heard.append):
        bar = Progress(1000, "drawing", unit="img", show=False, min_interval_s=60.0)
        for _ in range(1000):
            bar.update()
    assert [u.done for u in heard] == [0, 1000]


def test_a_resumed_count_starts_at_its_initial_value_and_times_only_this_sitting():
    heard = _heard(10, 2, initial=6)
    assert [u.done for u in heard] == [6, 7, 8]
    assert heard[1].remaining_s is not None and heard[1].remaining_s >= 0


def test_nothing_is_heard_outside_a_listen_block():
    heard: list[ProgressUpdate] = []
    with listen(heard.append):
        pass
    Progress(3, "alone", show=False).update(3)
    assert heard == []


def test_a_label_prefixes_the_task_inside_its_block():
    heard: list[ProgressUpdate] = []
    with listen(heard.append):
        with labelled("decoder stage"):
            Progress(1, "train x", show=False).update()
        Progress(1, "testing", show=False)
    assert [u.task for u in heard] == ["decoder stage: train x"] * 2 + ["testing"]


@pytest.mark.parametrize("seconds, text", [(0.4, "0:00"), (75, "1:15"), (3725, "1:02:05")])
def test_time_left_reads_as_a_clock(seconds, text):
    assert ProgressUpdate("t", 1, 2, "step", seconds).describe() == f"t 1/2 step, {text} left"


def test_a_suite_bar_shows_the_running_runs_training_and_testing(tiny_model_path, tmp_path, capsys):
    """The suite's one bar carries the run's step count, loss and its testing, not a frozen run id."""
    from evaluation.suite.orchestrate import run_suite

    suite = {
        "name": "tiny",
        "set": {"model.source": str(tiny_model_path), "camera.image_size": 64, "encoder.name": "resnet18",
                "device": "cpu", "optim.batch_size": 2, "optim.iterations": 3, "data.train_size": 6,
                "data.val_size": 2, "data.test_size": 4, "data.backgrounds": {"photo": 0.0}, "log_every": 1,
                "val_every": 3, "sample_every": 3, "checkpoint_every": 3, "num_val_images": 2, "progress": False},
        "grid": {"method": ["mofa"], "seed": [0]},
        "samples": 2,
    }
    spec_path = tmp_path / "suite.yaml"
    spec_path.write_text(yaml.safe_dump(suite))
    from evaluation.suite.spec import load_suite_spec

    run_suite(load_suite_spec(spec_path), tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    run_id = "mofa-per_vertex-resnet18-land0-s0"
    assert f"{run_id}: train run 3/3 step, loss " in err
    assert f"{run_id}: testing 4/4 img" in err
