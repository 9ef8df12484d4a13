"""Bad inputs, continued (see ``bad_inputs.py``): the study's own files and commands (issue #30).

Suite folders, reports and prepared folders under reruns, corruption and mistakes; the
crashes and unclear messages of suites, prepare, reconstruct, bench and train; the public
constructors of the Python API. ``usage-error`` is argparse's refusal of a flag: exit
status 2 and one line on stderr naming the flag.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from pathlib import Path

import torch

from bad_inputs import CASES, Case, Outcome, case
from bad_inputs_files import _cli


class LogCapture(logging.Handler):
    """The log records at ``level`` and above while in a ``with`` block, as one line (:meth:`text`)."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return " | ".join(record.getMessage() for record in self.records)

    def __enter__(self) -> "LogCapture":
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self)


def _usage(*argv: str) -> str:
    """Run the CLI expecting argparse to refuse a flag: raises ``Outcome('usage-error', stderr)``."""
    from mofa_bench.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(list(argv))
        except SystemExit as exit_:
            rc = exit_.code
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    if rc == 2 and len(lines) == 1:
        raise Outcome("usage-error", lines[0])
    raise Outcome(f"exit {rc}", " | ".join(lines))


# ----------------------------------------------------------------------------- commands (#30 item 3)
@case("CLI", "cli-error", r"^mofa-bench suite: error: suite \w+: exclude leaves out every point of the grid")
def _cli_suite_dry_run_excludes_everything(env, tmp):
    suite = tmp / "empty.yaml"
    suite.write_text(f"set: {{model.source: {env.model_path}}}\ngrid: {{method: [mean_face]}}\n"
                     f"exclude: [{{method: mean_face}}]\n")
    _cli("suite", str(suite), "--out", str(tmp / "out"), "--dry-run")


@case("CLI", "usage-error", r"^mofa-bench prepare folder: error: argument --max-megapixels: .*finite number > 0, "
                            r"got nan")
def _cli_prepare_max_megapixels_nan(env, tmp):
    _usage("prepare", "folder", str(tmp), "--out", str(tmp / "out"), "--max-megapixels", "nan")


@case("CLI", "cli-error", r"^mofa-bench train: error: camera\.image_size: expected at most 4096 px, got 100000")
def _cli_huge_image_size(env, tmp):
    _cli("train", "--set", f"model.source={env.model_path}", "--set", "camera.image_size=100000",
         "--out", str(tmp / "run"))


@case("CLI", "usage-error", r"^mofa-bench bench renderers: error: argument --levels: expected an integer in "
                            r"\[0, 4\], got 99")
def _cli_bench_levels(env, tmp):
    _usage("bench", "renderers", "--quick", "--device", "cpu", "--levels", "99", "--out", str(tmp))


@case("CLI", "usage-error", r"^mofa-bench bench profile: error: argument --steps: expected an integer >= 1, got 0")
def _cli_bench_profile_steps(env, tmp):
    _usage("bench", "profile", "--device", "cpu", "--steps", "0", "--out", str(tmp))


def _broken_checkpoint(env, tmp: Path, change) -> Path:
    from mofa_bench.training import save_checkpoint

    state = torch.load(env.checkpoint, weights_only=True)
    change(state)
    return save_checkpoint(state, tmp / "broken.pt")


def _reconstruct_cli(env, tmp: Path, checkpoint: Path) -> None:
    out = tmp / "out"
    try:
        _cli("reconstruct", str(env.photo), str(env.other_photo), "--checkpoint", str(checkpoint), "--out", str(out),
             "--detector", "none", "--device", "cpu")
    finally:  # refused before the first photo: nothing written
        assert not (out / "reconstructions.csv").exists() and not list(out.glob("*.obj"))


def _nan_weight(state: dict) -> None:
    key = next(k for k, v in state["method"].items() if k.startswith("encoder.") and v.is_floating_point())
    state["method"][key] = torch.full_like(state["method"][key], math.nan)


@case("checkpoint", "cli-error", r"^mofa-bench reconstruct: error: checkpoint .*broken\.pt: method weight '.*' has "
                                 r"\d+ NaN or infinite value\(s\); use an earlier checkpoint")
def _cli_reconstruct_nan_weights(env, tmp):
    _reconstruct_cli(env, tmp, _broken_checkpoint(env, tmp, _nan_weight))


@case("checkpoint", "cli-error", r"^mofa-bench reconstruct: error: checkpoint .*broken\.pt: 'encoder' must be a "
                                 r"mapping of weight tensors, got Tensor")
def _cli_reconstruct_encoder_is_a_tensor(env, tmp):
    def change(state: dict) -> None:
        state.pop("method")
        state["encoder"] = torch.zeros(3)

    _reconstruct_cli(env, tmp, _broken_checkpoint(env, tmp, change))


@case("checkpoint", "TrainingDivergedError", r"1 batches in a row gave a .* \(last at step 0\); training stopped\. "
                                             r"No checkpoint was written before it diverged\. Try")
def _diverges_at_step_one(env, tmp):
    from helpers import tiny_train_config
    from mofa_bench.training import Trainer

    trainer = Trainer(tiny_train_config(tmp, env.model_path, *env.run_overrides, "max_nonfinite=1", name="nan"),
                      validator=None)
    trainer.method.encode = lambda images: torch.full((images.shape[0], 257), math.nan)
    trainer.fit()


@case("checkpoint", "TrainingDivergedError", r"The last good checkpoint is .*nan/checkpoints/last\.pt \(step 2\)\.")
def _diverges_after_a_checkpoint(env, tmp):
    from helpers import tiny_train_config
    from mofa_bench.training import Trainer

    config = tiny_train_config(tmp, env.model_path, *env.run_overrides, name="nan")
    Trainer(config, validator=None).fit()
    more = tiny_train_config(tmp, env.model_path, *env.run_overrides, "optim.iterations=4", "max_nonfinite=1",
                             name="nan")
    trainer = Trainer(more, validator=None)
    trainer.method.encode = lambda images: torch.full((images.shape[0], 257), math.nan)
    trainer.fit(resume=True, allow_config_change=True)


# ----------------------------------------------------------------------------- public constructors (#30 item 5)
def _decoder(env, **kwargs):
    from mofa_bench import Camera, MoFADecoder

    return MoFADecoder(env.decoder.model, Camera(32), **kwargs)


API_CONSTRUCTOR_CASES = [
    ("get_renderer device='gpu'", lambda env: __import__("renderers").get_renderer("per_vertex", device="gpu"),
     r"^device: expected 'cpu', 'cuda', 'cuda:i' or a torch\.device, got 'gpu'"),
    ("get_renderer unknown option", lambda env: __import__("renderers").get_renderer("per_vertex", foo=1),
     r"^renderer 'per_vertex': unknown option\(s\) foo; known options: none"),
    ("MoFADecoder(None)", lambda env: __import__("mofa_bench").MoFADecoder(None),
     r"^MoFADecoder\.model: expected a FaceModel .*got NoneType"),
    ("MoFADecoder renderer_options foo", lambda env: _decoder(env, renderer_options={"foo": 1}),
     r"^MoFADecoder\.renderer_options: renderer 'per_vertex': unknown option\(s\) foo"),
    ("MoFADecoder unknown renderer", lambda env: _decoder(env, renderer="magic"),
     r"^MoFADecoder\.renderer: unknown renderer 'magic'; known renderers"),
    ("MoFADecoder camera=240", lambda env: __import__("mofa_bench").MoFADecoder(env.decoder.model, 240),
     r"^MoFADecoder\.camera: expected a Camera or None, got int"),
    ("MoFADecoder ambient_offset NaN", lambda env: _decoder(env, ambient_offset=math.nan),
     r"^MoFADecoder\.ambient_offset: expected a finite number, got nan"),
    ("FaceModel.load('default', foo=1)", lambda env: __import__("mofa_bench").FaceModel.load("default", foo=1),
     r"option\(s\) \['foo'\] are not accepted for the default model; accepted: \['subdivisions'"),
    ("FaceModel.load(None)", lambda env: __import__("mofa_bench").FaceModel.load(None),
     r"^FaceModel\.load: source: expected 'default' or a path, got NoneType"),
    ("render codes of 1e30", lambda env: env.decoder.render(torch.full((1, 257), 1e30)),
     r"^code: values up to 1e\+30 in magnitude; a code is at most ±1e\+12"),
]
for _id, _make, _pattern in API_CONSTRUCTOR_CASES:
    CASES.append(Case(f"api {_id}", "API argument", "InputError", _pattern,
                      (lambda make: lambda env, tmp: make(env))(_make)))


# ----------------------------------------------------------------------------- long work (#30 item 4)
def _fit_config(env, tmp: Path, renderer: str) -> Path:
    path = tmp / "fit.yaml"
    path.write_text(f"model: {{source: {env.model_path}}}\ncamera: {{image_size: 64}}\nrenderer: {renderer}\n")
    return path


@case("CLI", "cli-error", r"^mofa-bench reconstruct: error: --fit-solver lm: Levenberg-Marquardt through pytorch3d "
                          r"on cpu takes about .* per iteration per 64 px photo \(\d+ Jacobian rows by reverse "
                          r"passes\), .* for 100000 iterations; use --fit-solver adam .* --timeout SECONDS$")
def _cli_lm_through_a_rasterizer_on_the_cpu(env, tmp):
    _cli("reconstruct", str(env.photo), "--method", "fit", "--fit-solver", "lm", "--fit-steps", "100000",
         "--config", str(_fit_config(env, tmp, "pytorch3d")), "--device", "cpu", "--detector", "none",
         "--out", str(tmp / "out"))


@case("CLI", "cli-error", r"^mofa-bench reconstruct: error: --timeout: bounds the Levenberg-Marquardt fit "
                          r"\(--fit-solver lm\)")
def _cli_timeout_with_adam(env, tmp):
    _cli("reconstruct", str(env.photo), "--method", "fit", "--timeout", "5", "--config",
         str(_fit_config(env, tmp, "per_vertex")), "--device", "cpu", "--detector", "none", "--out", str(tmp / "o"))


@case("CLI", "usage-error", r"^mofa-bench reconstruct: error: argument --timeout: expected a finite number of "
                            r"seconds > 0, got nan")
def _cli_timeout_nan(env, tmp):
    _usage("reconstruct", str(env.photo), "--method", "fit", "--timeout", "nan")


# ----------------------------------------------------------------------------- suite folders and reports (#30 item 1)
def _suite_file(env, tmp: Path, name: str, test_size: int = 4, seeds: str = "[0]") -> Path:
    """A suite of the untrained ``mean_face`` method on the tiny model (seconds per run)."""
    path = tmp / f"{name}.yaml"
    path.write_text(f"name: {name}\nset: {{model.source: {env.model_path}, camera.image_size: 64, device: cpu, "
                    f"data.test_size: {test_size}, data.val_size: 2, data.train_size: 4, progress: false}}\n"
                    f"grid: {{method: [mean_face], seed: {seeds}}}\nsamples: 2\n")
    return path


def _suite(env, tmp: Path, name: str = "first", *flags: str, **kwargs) -> Path:
    out = tmp / "q"
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            _cli("suite", str(_suite_file(env, tmp, name, **kwargs)), "--out", str(out), "--no-progress", *flags)
        except Outcome as outcome:
            if outcome.kind != "ok":
                raise
    return out


@case("study files", "cli-error", r"^mofa-bench suite: error: --out .*q holds suite first \(spec \w+\) on test set "
                                  r"\w+ \[4 test images at 64 px .*\]; this is suite other .*2 test images.*--add.*"
                                  r"--replace")
def _suite_folder_of_another_suite(env, tmp):
    out = _suite(env, tmp)
    before = (out / "results.csv").read_bytes(), (out / "inputs.pt").read_bytes()
    try:
        _suite(env, tmp, "other", test_size=2)
    finally:
        assert ((out / "results.csv").read_bytes(), (out / "inputs.pt").read_bytes()) == before


@case("study files", "cli-error", r"^mofa-bench suite: error: --add: .*holds suite first .*is scored on another "
                                  r"test set")
def _suite_add_on_another_test_set(env, tmp):
    _suite(env, tmp)
    _suite(env, tmp, "other", "--add", test_size=2)


@case("study files", "ok", r"^2 rows: first, more$")
def _suite_add_keeps_every_row(env, tmp):
    import pandas as pd

    _suite(env, tmp)
    out = _suite(env, tmp, "more", "--add", seeds="[1]")
    suites = [s["name"] for s in json.loads((out / "suite.json").read_text())["suites"]]
    raise Outcome("ok", f"{len(pd.read_csv(out / 'results.csv'))} rows: {', '.join(suites)}")


@case("study files", "ok", r"^moved aside: q\.replaced-\d{8}T\d{6}Z$")
def _suite_replace(env, tmp):
    _suite(env, tmp)
    _suite(env, tmp, "other", "--replace", test_size=2)
    [moved] = tmp.glob("q.replaced-*")
    assert (moved / "results.csv").is_file()
    raise Outcome("ok", f"moved aside: {moved.name}")


@case("study files", "ok", r"status\.json is unreadable \(JSONDecodeError.*; the run is trained again")
def _suite_cut_short_status(env, tmp):
    out = _suite(env, tmp)
    [status] = out.glob("runs/*/status.json")
    status.write_text('{"status": "o')
    with LogCapture(logging.WARNING) as log:
        _suite(env, tmp)
    assert json.loads(status.read_text())["status"] == "ok"
    raise Outcome("ok", log.text())


@case("study files", "ok", r"results\.csv is unreadable \(UnicodeDecodeError\); the table is rebuilt from .*runs")
def _report_random_bytes_in_results_csv(env, tmp):
    from evaluation.report.build import write_suite_report
    out = _suite(env, tmp)
    (out / "results.csv").write_bytes(bytes(range(128, 256)) * 8)
    with LogCapture(logging.WARNING) as log:
        files = write_suite_report(out, bench_csvs=[])
    assert "1 run (1 ok)" in files.markdown.read_text()
    raise Outcome("ok", log.text())


@case("study files", "cli-error", r"^mofa-bench report: error: .*q: runs scored on different test sets cannot share "
                                  r"one table: 1 run \(mean_face-.*-s0\) on 4 test images .*; 1 run "
                                  r"\(mean_face-.*-s1\) on 2 test images")
def _report_mixed_test_sets(env, tmp):
    out = _suite(env, tmp)
    other = tmp / "other"
    other.mkdir()
    _suite(env, other, "other", test_size=2, seeds="[1]")
    [run] = (other / "q" / "runs").iterdir()
    run.rename(out / "runs" / run.name)
    _cli("report", str(out))


@case("study files", "cli-error", r"^mofa-bench suite: error: --out .*q: 1 run\(s\) there were scored on another "
                                  r"test set than suite other's")
def _suite_old_folder_of_another_test_set(env, tmp):
    out = _suite(env, tmp)
    (out / "suite.json").unlink()  # a folder made before the record existed
    _suite(env, tmp, "other", test_size=2)


# ----------------------------------------------------------------------------- prepared folders (#30 item 2)
def _prepare_cli(folder: Path, out: Path) -> str:
    try:
        _cli("prepare", "folder", str(folder), "--out", str(out), "--detector", "haar", "--landmarker", "none",
             "--no-progress")
    except Outcome as outcome:
        if outcome.kind != "ok":
            raise
        return outcome.message
    return ""


@case("study files", "ok", r"^0 faces from 2 files in .*in \(manifest")
def _prepare_out_is_the_input(env, tmp):
    folder = tmp / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("not a photo")
    (folder / "b.txt").write_text("nor this")
    for _ in range(3):
        message = _prepare_cli(folder, folder)
    raise Outcome("ok", message.splitlines()[0])


@case("study files", "ok", r"1 photos changed since they were prepared, prepared again: a\.png.*reason: blank image")
def _prepare_changed_photo(env, tmp):
    import pandas as pd

    folder = tmp / "in"
    folder.mkdir()
    (folder / "a.png").write_text("not a photo yet")
    _prepare_cli(folder, tmp / "out")
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 90, 90)).save(folder / "a.png")
    with LogCapture(logging.WARNING) as log:
        _prepare_cli(folder, tmp / "out")
    [reason] = pd.read_parquet(tmp / "out" / "manifest.parquet")["reason"]
    raise Outcome("ok", f"{log.text()} reason: {reason}")


@case("study files", "ok", r"prepare\.json is unreadable \(JSONDecodeError\); rebuilt from the settings asked for")
def _prepare_cut_short_settings(env, tmp):
    from mofa_bench.photos.prepare import PrepareSettings, prepare_photos

    prepare_photos([], tmp, PrepareSettings(size=64), progress=False)
    (tmp / "prepare.json").write_text('{"size": 6')
    with LogCapture(logging.WARNING) as log:
        prepare_photos([], tmp, PrepareSettings(size=64), progress=False)
    raise Outcome("ok", log.text())


@case("study files", "cli-error", r"^mofa-bench prepare: error: .*manifest\.parquet: unreadable manifest .*; move "
                                  r".*manifest\.parquet away to prepare every photo again")
def _prepare_corrupt_manifest(env, tmp):
    folder = tmp / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    _prepare_cli(folder, tmp / "out")
    (tmp / "out" / "manifest.parquet").write_bytes(b"PAR1 cut")
    _prepare_cli(folder, tmp / "out")
