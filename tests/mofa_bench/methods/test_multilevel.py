"""The multi-level model: corrective level gradients (float64), span, both levels, renderers, export, CLI."""

import pytest
import torch
import trimesh
from PIL import Image

from helpers import assert_close, renderer_or_skip, tiny_train_config
from mofa_bench.camera import Camera
from mofa_bench.cli import main
from mofa_bench.data.out_of_span import model_span
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import build_encoder
from mofa_bench.errors import ConfigError
from mofa_bench.losses import LossWeights
from mofa_bench.methods import build_method
from mofa_bench.methods.correctives import REGULARIZERS, CorrectiveSpace
from mofa_bench.methods.multilevel import MultiLevelMethod
from mofa_bench.reconstruct import load_trained_model, reconstruct
from mofa_bench.sampling import CodePrior, sample_codes
from mofa_bench.training.trainer import Trainer


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return MoFADecoder(tiny_model, Camera(64))


def _method(decoder, orthogonal=True, landmark=1e-3) -> MultiLevelMethod:
    correctives = CorrectiveSpace(decoder.model, 2, 2, orthogonal=orthogonal, init_shape_mm=0.5,
                                  init_reflectance=0.01)
    weights = {name: 0.1 for name in REGULARIZERS}
    method = MultiLevelMethod(build_encoder("resnet18", image_size=64), decoder, correctives,
                              LossWeights(landmark=landmark), regularizer_weights=weights)
    return method.double().eval()


def test_corrective_level_gradients_in_float64(decoder):
    space = CorrectiveSpace(decoder.model, 2, 2, init_shape_mm=0.5, init_reflectance=0.01).double()
    code = sample_codes(2, CodePrior(), torch.Generator().manual_seed(0)).double()
    coefficients = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    shape = space.shape_basis.detach().clone().requires_grad_(True)
    reflectance = space.reflectance_basis.detach().clone().requires_grad_(True)
    base = decoder.form(code)

    def level(coefficients, shape, reflectance):
        """The corrected level through the module's own code, its bases swapped for the inputs."""
        bases = {"shape_basis": shape, "reflectance_basis": reflectance}
        s, r = torch.func.functional_call(space, bases, (coefficients,))
        formed = decoder.form_geometry(base.vertices + s, base.reflectance + r, code)
        regs = space.regularizers(coefficients, s, r)
        return formed.uv, formed.colors, formed.normals_cam, torch.stack(list(regs.values()))

    # Every coefficient's column exactly; the bases' 1,944 entries along random directions (fast mode).
    assert torch.autograd.gradcheck(lambda c: level(c, shape, reflectance), (coefficients,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(level, (coefficients, shape, reflectance), eps=1e-6, atol=1e-5, fast_mode=True)
    # The offsets are the projected bases times the coefficients.
    s, _ = space.offsets(coefficients)
    flat, q = space.shape_basis.reshape(-1, 2), space.shape_span
    expected = torch.einsum("nck,bk->bnc", (flat - q @ (q.T @ flat)).reshape(space.shape_basis.shape),
                            coefficients[:, :2])
    assert_close(s, expected)


def test_whole_corrected_level_loss_gradients_in_float64(decoder):
    method = _method(decoder)
    code = (0.3 * sample_codes(1, CodePrior(), torch.Generator().manual_seed(3))).double().requires_grad_(True)
    coefficients = (0.5 * torch.randn(1, 4, dtype=torch.float64)).requires_grad_(True)
    with torch.no_grad():
        image, _ = decoder.render(sample_codes(1, CodePrior(), torch.Generator().manual_seed(4)).double())
        landmarks = decoder.form(torch.zeros(1, 257, dtype=torch.float64)).landmarks_uv[:, decoder.model.landmark_subset]

    def total(code, coefficients):
        terms = method.level_terms(code, coefficients, image, landmarks, None)
        return torch.stack([terms["photo_corrected"], terms["landmark_corrected"],
                            terms["shape_smoothness"], terms["reflectance_magnitude"]])

    assert torch.autograd.gradcheck(total, (code, coefficients), eps=1e-6, atol=1e-4, rtol=1e-3, fast_mode=True)
    assert torch.autograd.gradcheck(lambda c: total(code, c), (coefficients,), eps=1e-6, atol=1e-4, rtol=1e-3)


def test_correctives_leave_the_3dmm_span_to_the_3dmm(decoder):
    for kind, basis in (("shape", 0), ("reflectance", 1)):
        q, _ = torch.linalg.qr(model_span(decoder.model, kind))
        projected = CorrectiveSpace(decoder.model, 3, 3).double().bases()[basis].detach().reshape(-1, 3)
        assert float((q.T @ projected).abs().max()) < 1e-5 * float(projected.abs().max())
    free = CorrectiveSpace(decoder.model, 3, 3, orthogonal=False)
    assert torch.equal(free.bases()[0], free.shape_basis)


def test_starts_as_mofa_and_learns_both_levels(decoder):
    method = _method(decoder)
    images = decoder.render(sample_codes(2, CodePrior(), torch.Generator().manual_seed(1)).double())[0]
    rec = method.reconstruct(images)
    assert float(rec.code.detach().abs().max()) == 0.0
    assert_close(rec.formed.vertices, decoder.form(rec.code).vertices)  # zero coefficients: the 3DMM face
    method.train()
    from mofa_bench.data.batch import FaceBatch

    landmarks = decoder.form(torch.zeros(2, 257, dtype=torch.float64)).landmarks_uv
    terms = method.loss_terms(FaceBatch(images=images, indices=torch.arange(2), landmarks=landmarks))
    assert {"photo", "photo_corrected", "landmark_corrected", *REGULARIZERS} <= terms.keys()
    assert_close(terms["photo_corrected"], terms["photo"])
    terms["total"].backward()
    assert float(method.corrective_head.weight.grad.abs().sum()) > 0  # the coefficients get a gradient
    groups = method.parameter_groups(0.1, 0.001)
    assert [g["name"] for g in groups] == ["default", "z_translation", "correctives"]


@pytest.mark.parametrize("renderer", ["per_vertex", "pytorch3d"])
def test_trains_through_every_renderer(decoder, renderer):
    backend = renderer_or_skip(renderer, "cpu", {})
    on_renderer = MoFADecoder(decoder.model, decoder.camera, renderer=backend)
    method = _method(on_renderer, landmark=0.0)
    method.correctives.shape_basis.data.normal_(0, 0.5)
    coefficients = torch.full((1, 4), 0.5, dtype=torch.float64, requires_grad=True)
    image = on_renderer.render(sample_codes(1, CodePrior(), torch.Generator().manual_seed(2)).double())[0]
    terms = method.level_terms(torch.zeros(1, 257, dtype=torch.float64), coefficients, image, None, None)
    terms["photo_corrected"].backward()
    assert float(coefficients.grad.abs().sum()) > 0


def test_bad_method_options_are_named(tmp_path, tiny_model_path):
    cases = [
        ("method_options={shape_sise: 3}", "method_options.shape_sise: unknown option of the multilevel method"),
        ("method_options={shape_size: -1}", "method_options.shape_size: expected an integer >= 0"),
        ("method_options={shape_size: 0, reflectance_size: 0}", "both 0"),
        ("method_options={orthogonal: 1}", "method_options.orthogonal: expected true or false"),
        ("method_options={shape_smoothness: -1}", "method_options.shape_smoothness: expected a finite number >= 0"),
    ]
    for override, message in cases:
        config = tiny_train_config(tmp_path, tiny_model_path, "method=multilevel", override)
        decoder = MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build())
        with pytest.raises(ConfigError, match=message):
            build_method(config, decoder)


def test_trains_from_the_command_line_and_exports_the_corrected_mesh(tmp_path, tiny_model_path, capsys):
    args = ["train", "--device", "cpu", "--encoder", "resnet18", "--iterations", "2", "--out", str(tmp_path),
            "--name", "ml", "--set", f"model.source={tiny_model_path}", "--set", "camera.image_size=64",
            "--set", "optim.batch_size=2", "--set", "data.train_size=4", "--set", "data.val_size=2",
            "--set", "progress=false", "--set", "num_val_images=2", "--set", "data.backgrounds={photo: 0.0}",
            "--set", "method=multilevel", "--set", "method_options={shape_size: 3, reflectance_size: 2}",
            "--set", "data.out_of_span={shape_modes: 3, reflectance_modes: 2}"]
    assert main(args) == 0
    assert "finished 2 steps" in capsys.readouterr().out
    assert "photo_corrected" in (tmp_path / "ml" / "metrics.csv").read_text().splitlines()[0]

    model = load_trained_model(tmp_path / "ml", "cpu")
    assert isinstance(model.method, MultiLevelMethod)
    with torch.no_grad():  # a visible correction, so the export shows whether it is applied
        model.method.corrective_head.bias.fill_(1.0)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray((torch.rand(80, 80, 3) * 255).byte().numpy()).save(photos / "face.png")
    results = reconstruct(model, [photos], tmp_path / "out", detector="none", mesh_formats=["ply"], progress=False)
    assert results[0].status == "ok"
    mesh = trimesh.load(tmp_path / "out" / "face.ply", process=False)
    crop = _crop_of(photos / "face.png")
    with torch.no_grad():
        code = model.encode(crop)
        base = model.decoder.form(code).vertices[0]
        corrected = model.form(crop, code).vertices[0]
    assert float((corrected - base).abs().max()) > 1e-3
    assert_close(torch.as_tensor(mesh.vertices, dtype=torch.float32), corrected, atol=1e-3, rtol=1e-4)


def _crop_of(path):
    """The centre crop ``reconstruct(detector="none")`` takes of a photo, as a batch of one."""
    from mofa_bench.data.images import crop_face, read_photo

    photo, _ = read_photo(path)
    return crop_face(photo, 64, "none")[None]
