import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from mofa_bench.cli import main
from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.config import config_to_dict, load_config
from mofa_bench.data.images import face_detector_available
from mofa_bench.encoders import Z_TRANSLATION_INDEX, build_encoder
from mofa_bench.errors import CheckpointError, DatasetError, InputError
from mofa_bench.face_model.model import FaceModel
from mofa_bench.reconstruct import (
    CodeModel,
    build_decoder,
    find_images,
    load_trained_model,
    reconstruct,
    resolve_checkpoint,
)
from mofa_bench.training import save_checkpoint

skimage_data = pytest.importorskip("skimage.data")
IMAGE_SIZE = 64


def _write_checkpoint(path: Path, model_path: Path, head_bias: torch.Tensor | None = None) -> Path:
    """A checkpoint as the trainer writes it: encoder weights, step and the run config."""
    config = load_config(None, [f"model.source={model_path}", f"camera.image_size={IMAGE_SIZE}",
                                "encoder.name=resnet18"], device="cpu")
    encoder = build_encoder("resnet18", image_size=IMAGE_SIZE)
    if head_bias is not None:
        z = Z_TRANSLATION_INDEX
        with torch.no_grad():
            encoder.head.main.bias.copy_(torch.cat([head_bias[:z], head_bias[z + 1:]]))
            encoder.head.z_translation.bias.copy_(head_bias[z:z + 1])
    state = {"encoder": encoder.state_dict(), "step": 7, "config": config_to_dict(config)}
    return save_checkpoint(state, path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(skimage_data.chelsea()).save(folder / "chelsea.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("not a photo")
    Image.fromarray(skimage_data.camera()).save(folder / "camera.ppm")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_path) -> Path:
    return _write_checkpoint(tmp_path_factory.mktemp("run") / "checkpoints" / "last.pt", tiny_model_path)


def _code_bias() -> torch.Tensor:
    """A head bias giving a non-trivial code: identity, expression, reflectance and a yaw."""
    bias = torch.zeros(CODE_DIM)
    bias[CODE_SLICES["alpha"]][:3] = torch.tensor([1.0, -0.5, 0.8])
    bias[CODE_SLICES["delta"]][:2] = torch.tensor([0.7, 0.3])
    bias[CODE_SLICES["beta"]][:2] = torch.tensor([0.5, -0.5])
    bias[CODE_SLICES["rotation"]][1] = 0.3
    return bias


class TestLoadTrainedModel:
    def test_restores_config_encoder_and_decoder(self, checkpoint, tiny_model_path):
        model = load_trained_model(checkpoint, "cpu")
        assert model.step == 7 and model.image_size == IMAGE_SIZE
        assert model.config.model.source == str(tiny_model_path)
        assert model.decoder.model.num_vertices == FaceModel.load(tiny_model_path).num_vertices
        assert not model.encoder.training

    def test_run_directory_resolves_to_its_checkpoint(self, checkpoint):
        assert resolve_checkpoint(checkpoint.parents[1]) == checkpoint

    def test_missing_checkpoint_is_a_clear_error(self, tmp_path):
        with pytest.raises(CheckpointError, match="does not exist"):
            load_trained_model(tmp_path / "nope.pt", "cpu")
        with pytest.raises(CheckpointError, match="no checkpoints/best.pt"):
            load_trained_model(tmp_path, "cpu")

    def test_truncated_checkpoint_is_a_clear_error(self, tmp_path, checkpoint):
        bad = tmp_path / "bad.pt"
        bad.write_bytes(checkpoint.read_bytes()[:200])
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            load_trained_model(bad, "cpu")

    def test_a_run_whose_photo_folder_has_moved_still_reconstructs(self, tmp_path, checkpoint):
        state = torch.load(checkpoint, weights_only=True)
        state["config"]["data"].update(kind="images", path=str(tmp_path / "moved_away"))
        model = load_trained_model(save_checkpoint(state, tmp_path / "images_run.pt"), "cpu")
        assert model.config.data.path == str(tmp_path / "moved_away")

    def test_checkpoint_without_config(self, tmp_path):
        path = save_checkpoint({"encoder": build_encoder("resnet18", image_size=IMAGE_SIZE).state_dict()},
                               tmp_path / "bare.pt")
        with pytest.raises(CheckpointError, match="no run config"):
            load_trained_model(path, "cpu")


class TestReconstruct:
    def test_astronaut_mesh_matches_the_model(self, tmp_path, photos, checkpoint, tiny_model_path):
        model = load_trained_model(checkpoint, "cpu")
        [result] = reconstruct(model, [photos / "astronaut.png"], tmp_path, detector="none", progress=False)
        assert result.status == "ok", result.message
        face_model = FaceModel.load(tiny_model_path)
        for suffix in (".obj", ".ply"):
            mesh = trimesh.load(tmp_path / f"astronaut{suffix}", process=False)
            assert len(mesh.vertices) == face_model.num_vertices
            assert len(mesh.faces) == face_model.num_triangles
        # A zero-initialised head predicts the zero code: the mean face in model space.
        mesh = trimesh.load(tmp_path / "astronaut.ply", process=False)
        np.testing.assert_allclose(mesh.vertices, face_model.mean_shape.numpy(), atol=1e-3)
        code = np.load(tmp_path / "astronaut_code.npz")
        assert code["code"].shape == (CODE_DIM,) and not code["code"].any()
        assert tuple(code["crop_box"]) == result.crop_box == (0, 0, 512)  # the centre square of a 512² photo
        assert (tmp_path / "astronaut_overlay.png").is_file()

    def test_code_files_hold_the_encoder_output(self, tmp_path, photos, tiny_model_path):
        bias = _code_bias()
        ckpt = _write_checkpoint(tmp_path / "biased.pt", tiny_model_path, head_bias=bias)
        model = load_trained_model(ckpt, "cpu")
        reconstruct(model, [photos / "astronaut.png"], tmp_path / "out", detector="none", progress=False)
        from mofa_bench.data.images import crop_face, load_image

        crop = crop_face(load_image(photos / "astronaut.png"), IMAGE_SIZE, "none")
        with torch.no_grad():
            expected = model.encoder(crop[None])[0]
        saved = np.load(tmp_path / "out" / "astronaut_code.npz")
        np.testing.assert_allclose(saved["code"], expected.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(saved["rotation"], expected[CODE_SLICES["rotation"]].numpy(), rtol=1e-5)
        record = json.loads((tmp_path / "out" / "astronaut_code.json").read_text())
        np.testing.assert_allclose(record["code"], saved["code"], rtol=1e-6)
        assert set(record["parts"]) == set(CODE_SLICES)
        # The mesh carries the identity/expression of that code, not the mean face.
        formed = model.decoder.form(expected[None])
        mesh = trimesh.load(tmp_path / "out" / "astronaut.ply", process=False)
        np.testing.assert_allclose(mesh.vertices, formed.vertices[0].detach().numpy(), atol=1e-3)
        assert np.abs(mesh.vertices - model.decoder.model.mean_shape.numpy()).max() > 0.1

    def test_posed_mesh_is_in_camera_space(self, tmp_path, photos, tiny_model_path):
        ckpt = _write_checkpoint(tmp_path / "biased.pt", tiny_model_path, head_bias=_code_bias())
        model = load_trained_model(ckpt, "cpu")
        reconstruct(model, [photos / "astronaut.png"], tmp_path, detector="none", posed=True,
                    mesh_formats=["ply"], progress=False)
        mesh = trimesh.load(tmp_path / "astronaut.ply", process=False)
        assert not (tmp_path / "astronaut.obj").exists()
        assert mesh.vertices[:, 2].min() > 300.0  # in front of the camera, ~600 mm away

    def test_folder_reports_failures_and_keeps_going(self, tmp_path, photos, checkpoint):
        model = load_trained_model(checkpoint, "cpu")
        results = reconstruct(model, [photos], tmp_path, detector="none", batch_size=2, progress=False)
        status = {r.source.name: r.status for r in results}
        assert status == {"astronaut.png": "ok", "broken.jpg": "failed", "camera.ppm": "ok", "chelsea.jpg": "ok",
                          "notes.txt": "skipped"}
        message = {r.source.name: r.message for r in results}
        assert "unreadable image" in message["broken.jpg"] and "not an image" in message["notes.txt"]
        assert message["camera.ppm"].startswith("greyscale image converted to RGB")
        index = (tmp_path / "reconstructions.csv").read_text().splitlines()
        assert len(index) == 6 and "broken.jpg,failed" in index[1 + sorted(status).index("broken.jpg")]
        [grey] = reconstruct(model, [photos / "camera.ppm"], tmp_path / "skip", detector="none", grey="skip",
                             progress=False)
        assert grey.status == "skipped" and "greyscale image" in grey.message

    def test_same_stem_gets_distinct_outputs(self, tmp_path, photos, checkpoint):
        other = tmp_path / "other"
        other.mkdir()
        (other / "astronaut.png").write_bytes((photos / "astronaut.png").read_bytes())
        model = load_trained_model(checkpoint, "cpu")
        reconstruct(model, [photos / "astronaut.png", other / "astronaut.png"], tmp_path / "out",
                    detector="none", progress=False)
        assert (tmp_path / "out" / "astronaut.obj").is_file() and (tmp_path / "out" / "astronaut_2.obj").is_file()

    @pytest.mark.skipif(not face_detector_available(), reason="OpenCV's Haar cascade is not installed")
    def test_detector_crops_the_face_and_rejects_a_cat(self, tmp_path, photos, checkpoint):
        model = load_trained_model(checkpoint, "cpu")
        results = reconstruct(model, [photos / "astronaut.png", photos / "chelsea.jpg"], tmp_path,
                              detector="haar", progress=False)
        assert results[0].status == "ok" and results[0].crop_box[2] < 400  # a face crop, not the whole photo
        assert results[1].status == "failed" and "no face found" in results[1].message

    def test_any_code_predictor(self, tmp_path, photos, tiny_model_path):
        # No encoder: a function from crops to codes, with the decoder of its codes.
        config = load_config(None, [f"model.source={tiny_model_path}", f"camera.image_size={IMAGE_SIZE}"])
        seen = []

        def encode(images: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(images.shape))
            return _code_bias().expand(images.shape[0], CODE_DIM)

        model = CodeModel(encode, build_decoder(config, torch.device("cpu")), IMAGE_SIZE, torch.device("cpu"))
        results = reconstruct(model, [photos], tmp_path, detector="none", batch_size=2, progress=False)
        assert [r.status for r in results] == ["ok", "failed", "ok", "ok", "skipped"]
        assert seen == [(1, 3, IMAGE_SIZE, IMAGE_SIZE), (2, 3, IMAGE_SIZE, IMAGE_SIZE)]
        saved = np.load(tmp_path / "chelsea_code.npz")
        np.testing.assert_allclose(saved["code"], _code_bias().numpy())

    def test_predictor_must_give_one_code_per_crop(self, tmp_path, photos, tiny_model_path):
        config = load_config(None, [f"model.source={tiny_model_path}", f"camera.image_size={IMAGE_SIZE}"])
        model = CodeModel(lambda images: torch.zeros(images.shape[0], 7),
                          build_decoder(config, torch.device("cpu")), IMAGE_SIZE, torch.device("cpu"))
        with pytest.raises(InputError, match="codes: expected shape"):
            reconstruct(model, [photos / "astronaut.png"], tmp_path, detector="none", progress=False)

    def test_bad_options(self, tmp_path, photos, checkpoint):
        model = load_trained_model(checkpoint, "cpu")
        with pytest.raises(InputError, match="mesh_formats"):
            reconstruct(model, [photos], tmp_path, mesh_formats=["stl"], progress=False)
        results = reconstruct(model, [tmp_path / "missing.png", photos / "astronaut.png"], tmp_path / "out",
                              detector="none", progress=False)
        assert [r.status for r in results] == ["ok", "skipped"]
        assert "missing.png: no such file" in results[1].message
        with pytest.raises(DatasetError, match="no such file"):
            find_images([tmp_path / "missing.png"])
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(DatasetError, match="no images"):
            find_images([empty])


class TestCli:
    def test_reconstruct_command(self, tmp_path, photos, checkpoint, capsys):
        rc = main(["reconstruct", str(photos / "astronaut.png"), "--checkpoint", str(checkpoint),
                   "--out", str(tmp_path), "--device", "cpu", "--detector", "none"])
        assert rc == 0
        assert "reconstructed 1 of 1 photos" in capsys.readouterr().out
        assert (tmp_path / "astronaut.obj").is_file()

    def test_failures_give_exit_status_1(self, tmp_path, photos, checkpoint, capsys):
        rc = main(["reconstruct", str(photos), "--checkpoint", str(checkpoint), "--out", str(tmp_path),
                   "--device", "cpu", "--detector", "none"])
        assert rc == 1
        captured = capsys.readouterr()
        assert "reconstructed 3 of 4 photos" in captured.out and "1 files that are no image skipped" in captured.out and "broken.jpg" in captured.err
        assert "notes.txt: not an image" in captured.err

    def test_a_skipped_non_image_alone_gives_exit_status_0(self, tmp_path, photos, checkpoint):
        folder = tmp_path / "in"
        folder.mkdir()
        (folder / "astronaut.png").write_bytes((photos / "astronaut.png").read_bytes())
        (folder / "notes.txt").write_text("not a photo")
        assert main(["reconstruct", str(folder), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                     "--device", "cpu", "--detector", "none"]) == 0
        assert main(["reconstruct", str(folder / "notes.txt"), "--checkpoint", str(checkpoint), "--out",
                     str(tmp_path / "out2"), "--device", "cpu", "--detector", "none"]) == 1

    def test_missing_checkpoint_message(self, tmp_path, photos, capsys):
        rc = main(["reconstruct", str(photos), "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path)])
        assert rc == 1
        assert "does not exist" in capsys.readouterr().err
