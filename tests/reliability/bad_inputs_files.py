"""Bad inputs, continued (see ``bad_inputs.py``): images, output paths and the command line."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from bad_inputs import Outcome, _yaml_file, case

# ----------------------------------------------------------------------------- images
def _png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


def _read(path: Path):
    from mofa_bench.data.images import read_photo

    return read_photo(path)


@case("image", "DatasetError", r"thin\.png: image too small \(5000 × 2 px; each side must be at least 8 px\)")
def _image_5000x2(env, tmp):
    _read(_png(tmp / "thin.png", np.random.default_rng(0).integers(0, 255, (2, 5000, 3), dtype=np.uint8)))


@case("image", "DatasetError", r"cut\.png: unreadable image")
def _image_truncated(env, tmp):
    data = env.photo.read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 3])
    _read(tmp / "cut.png")


@case("image", "DatasetError", r"flat\.png: blank image")
def _image_blank(env, tmp):
    _read(_png(tmp / "flat.png", np.full((32, 32, 3), 120, np.uint8)))


@case("image", "DatasetError", r"nan\.tif: floating-point image has NaN or infinite values")
def _image_float_nan(env, tmp):
    from PIL import Image

    array = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    array[3, 3] = math.nan
    Image.fromarray(array, mode="F").save(tmp / "nan.tif")
    _read(tmp / "nan.tif")


@case("image", "DatasetError", r"text\.jpg: unreadable image")
def _image_text_file(env, tmp):
    (tmp / "text.jpg").write_text("hello")
    _read(tmp / "text.jpg")


@case("image", "DatasetError", r"folder\.png: not a regular file")
def _image_is_a_folder(env, tmp):
    (tmp / "folder.png").mkdir()
    _read(tmp / "folder.png")


@case("image", "ok", r"f\.tif: floating-point image with values up to .*; divided by 255")
def _image_float_tiff_0_255(env, tmp):
    import warnings

    from PIL import Image

    array = (np.random.default_rng(0).random((32, 32)) * 255).astype(np.float32)
    Image.fromarray(array, mode="F").save(tmp / "f.tif")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image, _ = _read(tmp / "f.tif")
    assert float(image.max()) < 1.0 and float(image.std()) > 0.2  # scaled, not clipped to white
    raise Outcome("ok", " ".join(str(w.message) for w in caught))


def _tiff_outcome(path: Path, array: np.ndarray) -> None:
    import warnings

    from PIL import Image

    Image.fromarray(array).save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image, _ = _read(path)
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0 and float(image.std()) > 0.2  # not clipped
    raise Outcome("ok", " ".join(str(w.message) for w in caught))


@case("image", "ok", r"i32\.tif: integer image with values in \[\d+, \d+\]; mapped linearly to \[0, 1\]")
def _image_int32_tiff(env, tmp):
    _tiff_outcome(tmp / "i32.tif", (np.random.default_rng(0).random((32, 32)) * 2**31).astype(np.int32))


@case("image", "ok", r"neg\.tif: floating-point image with values in \[-.*\]; mapped linearly to \[0, 1\]")
def _image_negative_float_tiff(env, tmp):
    _tiff_outcome(tmp / "neg.tif", (np.random.default_rng(0).random((32, 32)) * -5).astype(np.float32))


@case("image", "ok", r"downscaled by 0\.5")
def _image_huge(env, tmp):
    wide = np.kron(np.random.default_rng(0).integers(0, 255, (2, 100, 3), dtype=np.uint8), np.ones((50, 50, 1),
                                                                                               np.uint8))
    _png(tmp / "wide.png", wide)  # 5000 × 100
    image, scale = _read(tmp / "wide.png")
    assert tuple(image.shape) == (3, 50, 2500)
    raise Outcome("ok", f"downscaled by {scale:.3g}")


def _reconstruct(env, inputs, out: Path, **kwargs):
    from mofa_bench.reconstruct import reconstruct

    return reconstruct(env.code_model, inputs, out, detector="none", progress=False, **kwargs)


def _result_of(results, name: str):
    found = [r for r in results if Path(r.source).name == name]
    assert len(found) == 1, [(str(r.source), r.status) for r in results]
    others_ok = [r for r in results if Path(r.source).name != name and r.status == "ok"]
    assert others_ok, "the other photos must still run"
    raise Outcome(found[0].status, found[0].message)


@case("image", "skipped", r"missing\.png: no such file or folder")
def _reconstruct_missing_path(env, tmp):
    _result_of(_reconstruct(env, [tmp / "missing.png", env.photo], tmp / "out"), "missing.png")


@case("image", "skipped", r"pipe\.png: not a regular file \(a FIFO\)")
def _reconstruct_fifo(env, tmp):
    os.mkfifo(tmp / "pipe.png")
    _result_of(_reconstruct(env, [tmp / "pipe.png", env.photo], tmp / "out"), "pipe.png")


@case("image", "skipped", r"loop\.png: symbolic link loop")
def _reconstruct_symlink_loop(env, tmp):
    (tmp / "loop.png").symlink_to(tmp / "loop.png")
    _result_of(_reconstruct(env, [tmp / "loop.png", env.photo], tmp / "out"), "loop.png")


@case("image", "skipped", r"gone\.png: dangling symbolic link")
def _reconstruct_dangling_link_in_folder(env, tmp):
    folder = tmp / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(env.photo.read_bytes())
    (folder / "gone.png").symlink_to(tmp / "nowhere.png")
    _result_of(_reconstruct(env, [folder], tmp / "out"), "gone.png")


@case("image", "failed", r"broken\.jpg: unreadable image")
def _reconstruct_broken_photo(env, tmp):
    (tmp / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    _result_of(_reconstruct(env, [tmp / "broken.jpg", env.photo], tmp / "out"), "broken.jpg")


@case("image", "ok", r"")
def _reconstruct_gif_and_tif_in_folder(env, tmp):
    from PIL import Image

    folder = tmp / "in"
    folder.mkdir()
    photo = Image.open(env.photo).convert("RGB")
    photo.save(folder / "a.gif")
    photo.save(folder / "b.tif")
    results = _reconstruct(env, [folder], tmp / "out")
    assert sorted((Path(r.source).name, r.status) for r in results) == [("a.gif", "ok"), ("b.tif", "ok")]
    raise Outcome("ok")


# ----------------------------------------------------------------------------- output paths
@case("output path", "ok", r"outputs named b_2 \(it would overwrite an input photo\)")
def _out_is_the_input_folder(env, tmp):
    folder = tmp / "photos"
    folder.mkdir()
    (folder / "b.png").write_bytes(env.photo.read_bytes())
    overlay = folder / "b_overlay.png"
    overlay.write_bytes(env.other_photo.read_bytes())
    before = overlay.read_bytes()
    results = _reconstruct(env, [folder], folder)
    assert overlay.read_bytes() == before, "an input photo was overwritten"
    assert all(r.status == "ok" for r in results) and (folder / "b_2_overlay.png").is_file()
    raise Outcome("ok", next(r.message for r in results if r.source.name == "b.png"))


@case("output path", "ok", r"outputs named a_png \(another photo has the stem 'a'\)")
def _same_stem_inputs(env, tmp):
    from PIL import Image

    Image.open(env.photo).convert("RGB").save(tmp / "a.jpg")
    (tmp / "a.png").write_bytes(env.other_photo.read_bytes())
    results = _reconstruct(env, [tmp / "a.jpg", tmp / "a.png"], tmp / "out")
    assert [r.status for r in results] == ["ok", "ok"]
    assert (tmp / "out" / "a.obj").is_file() and (tmp / "out" / "a_png.obj").is_file()
    raise Outcome("ok", results[1].message)


@case("output path", "ok", r"")
def _dotted_stems(env, tmp):
    (tmp / "a.png").write_bytes(env.photo.read_bytes())
    (tmp / "a.b.png").write_bytes(env.other_photo.read_bytes())
    results = _reconstruct(env, [tmp / "a.png", tmp / "a.b.png"], tmp / "out")
    outputs = [p.name for r in results for p in r.outputs]
    assert len(outputs) == len(set(outputs)) == 10 and "a.b.obj" in outputs and "a.obj" in outputs, outputs
    raise Outcome("ok")


@case("output path", "InputError", r"out_dir: .*file\.txt is a file, not a folder")
def _out_is_a_file(env, tmp):
    (tmp / "file.txt").write_text("x")
    _reconstruct(env, [env.photo], tmp / "file.txt")


@case("output path", "InputError", r"out_dir: cannot create folder .*file\.txt/sub \(Not a directory\)")
def _out_under_a_file(env, tmp):
    (tmp / "file.txt").write_text("x")
    _reconstruct(env, [env.photo], tmp / "file.txt" / "sub")


@case("output path", "InputError", r"out_dir: cannot (create folder|write into) /proc/")
def _out_unwritable(env, tmp):
    _reconstruct(env, [env.photo], "/proc/mofa_bench_out")


@case("output path", "InputError", r"--out: '\.txt' is not an image format Pillow can write")
def _image_out_unknown_suffix(env, tmp):
    from mofa_bench.output_paths import image_output_file

    image_output_file(tmp / "sheet.txt")


@case("output path", "ok", r"sheet\.png$")
def _image_out_without_suffix(env, tmp):
    from mofa_bench.output_paths import image_output_file

    raise Outcome("ok", str(image_output_file(tmp / "sheet")))


# ----------------------------------------------------------------------------- the CLI
def _cli(*argv: str) -> str:
    """Run the CLI in-process; returns stderr, raising Outcome('cli-error') on exit 1."""
    import contextlib
    import io

    from mofa_bench.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(list(argv))
    text = err.getvalue()
    if rc == 1:
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got {lines}"
        assert "Traceback" not in text
        raise Outcome("cli-error", text.strip())
    raise Outcome("ok" if rc == 0 else f"exit {rc}", out.getvalue().strip())


@case("CLI", "cli-error", r"^mofa-bench train: error: config file .*c\.yaml is not a UTF-8 text file")
def _cli_binary_yaml(env, tmp):
    _cli("train", "--config", str(_yaml_file(tmp, bytes(range(128, 256)))))


@case("CLI", "cli-error", r"^mofa-bench train: error: renderer 'nvdiffrast' is unavailable: .*cpu")
def _cli_nvdiffrast_on_cpu(env, tmp):
    _cli("train", "--device", "cpu", "--renderer", "nvdiffrast", "--out", str(tmp), "--set",
         f"model.source={env.model_path}", "--set", "data.train_size=4", "--set", "data.val_size=2",
         "--set", "camera.image_size=64", "--encoder", "resnet18")


@case("CLI", "cli-error", r"^mofa-bench contact-sheet: error: --out: .*file\.txt is a file, not a folder")
def _cli_sheet_out_under_a_file(env, tmp):
    (tmp / "file.txt").write_text("x")
    _cli("contact-sheet", "--out", str(tmp / "file.txt" / "sheet.png"))


@case("CLI", "cli-error", r"^mofa-bench contact-sheet: error: --out: '\.txt' is not an image format")
def _cli_sheet_out_text(env, tmp):
    _cli("contact-sheet", "--out", str(tmp / "sheet.txt"))


@case("CLI", "cli-error", r"^mofa-bench model: error: --out: .*file\.txt is a file, not a folder")
def _cli_model_export_to_file(env, tmp):
    (tmp / "file.txt").write_text("x")
    _cli("model", "export", "--model", str(env.model_path), "--out", str(tmp / "file.txt"))


@case("CLI", "cli-error", r"^mofa-bench train: error: --out/--name \(run directory\): cannot create folder")
def _cli_train_out_under_a_file(env, tmp):
    (tmp / "file.txt").write_text("x")
    _cli("train", "--out", str(tmp / "file.txt"), "--set", f"model.source={env.model_path}")


@case("CLI", "cli-error", r"^mofa-bench reconstruct: error: checkpoint .*x\.pt does not exist")
def _cli_reconstruct_missing_checkpoint(env, tmp):
    _cli("reconstruct", str(env.photo), "--checkpoint", str(tmp / "x.pt"), "--out", str(tmp / "out"))


@case("CLI", "cli-error", r"^mofa-bench train: error: seed: .*18446744073709551616")
def _cli_huge_seed(env, tmp):
    _cli("train", "--set", "seed=18446744073709551616", "--set", f"model.source={env.model_path}")


@case("CLI", "cli-error", r"^mofa-bench train: error: model\.source: .*unknown face-model format")
def _cli_model_source_suffix(env, tmp):
    _cli("train", "--set", f"model.source={tmp / 'face.stl'}")


@case("CLI", "cli-error", r"^mofa-bench train: error: --allow-config-change goes with --resume")
def _cli_allow_change_without_resume(env, tmp):
    _cli("train", "--allow-config-change", "--device", "cpu", "--out", str(tmp), "--encoder", "resnet18",
         "--set", f"model.source={env.model_path}", "--set", "data.train_size=4", "--set", "data.val_size=2",
         "--set", "camera.image_size=64")


@case("CLI", "cli-error", r"^mofa-bench suite: error: --out: .*taken\.txt is a file, not a folder")
def _cli_suite_out_is_a_file(env, tmp):
    (tmp / "taken.txt").write_text("x")
    _cli("suite", "smoke", "--out", str(tmp / "taken.txt"))


@case("CLI", "cli-error", r"^mofa-bench report: error: --out: .*taken\.txt is a file, not a folder")
def _cli_report_out_is_a_file(env, tmp):
    (tmp / "taken.txt").write_text("x")
    _cli("report", str(tmp), "--out", str(tmp / "taken.txt"))


@case("CLI", "cli-error", r"^mofa-bench bench: error: --out: .*taken\.txt is a file, not a folder")
def _cli_bench_out_is_a_file(env, tmp):
    (tmp / "taken.txt").write_text("x")
    _cli("bench", "renderers", "--quick", "--device", "cpu", "--out", str(tmp / "taken.txt"))


@case("CLI", "cli-error", r"^mofa-bench prepare: error: --out: .*taken\.txt is a file, not a folder")
def _cli_prepare_out_is_a_file(env, tmp):
    (tmp / "taken.txt").write_text("x")
    _cli("prepare", "folder", str(tmp), "--out", str(tmp / "taken.txt"), "--detector", "haar")
