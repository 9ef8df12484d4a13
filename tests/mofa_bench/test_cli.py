import pytest

from mofa_bench.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "contact-sheet", "model", "train"):
        assert command in out


def test_info_reports_renderers_and_photo_tools(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "per_vertex" in out and "pytorch3d" in out and "nvdiffrast" in out
    photos = out.split("photos (prepare, reconstruct):")[1].split("face model:")[0]
    assert {"haar", "mediapipe", "detector", "landmarker"} <= set(photos.split())


def test_contact_sheet_and_model_export(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["contact-sheet", "--subdivisions", "0", "--rows", "1", "--columns", "2", "--image-size", "64",
                 "--out", str(sheet), "--mesh", str(tmp_path / "mean")]) == 0
    from PIL import Image

    image = Image.open(sheet)
    assert image.size[0] > 2 * 64 and (tmp_path / "mean.obj").exists() and (tmp_path / "mean.ply").exists()
    assert main(["model", "export", "--subdivisions", "0", "--out", str(tmp_path / "m")]) == 0
    from mofa_bench import FaceModel

    model = FaceModel.load(tmp_path / "m" / "default_model.npz")
    assert model.num_vertices == 468


def test_user_error_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_train_then_resume_a_finished_run(tmp_path, tiny_model_path, capsys):
    args = ["train", "--device", "cpu", "--encoder", "resnet18", "--iterations", "2", "--out", str(tmp_path),
            "--name", "tiny", "--set", f"model.source={tiny_model_path}", "--set", "camera.image_size=64",
            "--set", "optim.batch_size=2", "--set", "data.train_size=4", "--set", "data.val_size=2",
            "--set", "progress=false", "--set", "num_val_images=2", "--set", "data.backgrounds={photo: 0.0}"]
    assert main(args) == 0
    assert "finished 2 steps" in capsys.readouterr().out
    assert main(args + ["--resume"]) == 0
    assert "already finished 2 of 2 steps" in capsys.readouterr().out
    assert main(args) == 1  # without --resume an existing run is not overwritten
    assert "--resume" in capsys.readouterr().err


def test_every_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    binary = tmp_path / "c.yaml"
    binary.write_bytes(bytes(range(128, 256)))
    assert main(["train", "--config", str(binary)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a UTF-8 text file" in err and "Traceback" not in err
    from mofa_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        main(["train", "--config", str(binary), "--debug"])


def test_unforeseen_errors_are_one_line_too(monkeypatch, capsys):
    import mofa_bench.cli as cli

    def broken(args):
        raise KeyError("surprise")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "mofa-bench info: error: KeyError: 'surprise' (run again with --debug for the traceback)"


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["contact-sheet", "--rows", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rows: expected a positive integer, got 0" in err
