import math

import numpy as np
import pytest
import torch

from mofa_bench import CODE_DIM, Camera, MoFADecoder, join_code
from mofa_bench.errors import InputError
from mofa_bench.formation import form_face
from mofa_bench.geometry import vertex_normals
from mofa_bench_references import vertex_normals_reference
from mofa_bench.shading import ambient_irradiance
from helpers import assert_close, tiny_face_model


def _code(batch: int = 1, **parts: torch.Tensor) -> torch.Tensor:
    code = torch.zeros(batch, CODE_DIM, dtype=torch.float64)
    return join_code(**parts) if parts else code


class TestVertexNormals:
    def test_matches_reference_loop(self, tiny_model):
        v = tiny_model.mean_shape.unsqueeze(0) + torch.randn(2, tiny_model.num_vertices, 3, dtype=torch.float64)
        assert_close(vertex_normals(v, tiny_model.triangles), vertex_normals_reference(v, tiny_model.triangles))

    def test_ellipsoid_normals_point_outwards(self, tiny_model):
        v = tiny_model.mean_shape.unsqueeze(0)
        n = vertex_normals(v, tiny_model.triangles)
        assert bool(((n * v).sum(-1) > 0).all())


class TestLinearModel:
    """V = A_s + E_s α + E_e δ and R = A_r + E_r β, vertex by vertex."""

    def test_vertices_and_reflectance_follow_the_definition(self, tiny_model):
        generator = torch.Generator().manual_seed(4)
        alpha, delta, beta = (torch.randn(3, k, generator=generator, dtype=torch.float64) for k in (80, 64, 80))
        verts = tiny_model.vertices(alpha, delta)
        albedo = tiny_model.reflectance(beta)
        for b in range(3):
            for n in (0, 7, tiny_model.num_vertices - 1):
                expected = (tiny_model.mean_shape[n] + tiny_model.shape_basis[n] @ alpha[b]
                            + tiny_model.expression_basis[n] @ delta[b])
                assert_close(verts[b, n], expected)
                assert_close(albedo[b, n], tiny_model.mean_reflectance[n] + tiny_model.reflectance_basis[n] @ beta[b])

    def test_gradients_wrt_coefficients(self, tiny_model):
        alpha = torch.randn(2, 80, dtype=torch.float64, requires_grad=True)
        delta = torch.randn(2, 64, dtype=torch.float64, requires_grad=True)
        beta = torch.randn(2, 80, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(tiny_model.vertices, (alpha, delta))
        assert torch.autograd.gradcheck(tiny_model.reflectance, (beta,))


class TestFormation:
    def test_zero_code_projects_centred(self, tiny_model):
        cam = Camera(image_size=64)
        formed = form_face(tiny_model, cam, _code())
        centroid = formed.uv[0].mean(0)
        assert_close(centroid, torch.tensor([32.0, 32.0], dtype=torch.float64), atol=1e-6, rtol=0)

    def test_zero_code_colours_are_mean_reflectance_times_ambient(self, tiny_model):
        formed = form_face(tiny_model, Camera(64), _code())
        # Zero code = ambient light only: every vertex gets the same irradiance.
        assert_close(formed.colors[0], tiny_model.mean_reflectance * ambient_irradiance())

    def test_rotation_by_pi_about_vertical_leaves_no_front_facing_front(self, tiny_model):
        # The front half of the head (model z > 0) faces the camera at zero pose ...
        front = tiny_model.mean_shape[:, 2] > 20.0
        formed = form_face(tiny_model, Camera(64), _code())
        assert bool(formed.visible[0, front].all())
        # ... and none of it does after turning the head by π about the vertical axis.
        rot = torch.tensor([[0.0, math.pi, 0.0]], dtype=torch.float64)
        formed = form_face(tiny_model, Camera(64), _code(rotation=rot))
        assert not bool(formed.visible[0, front].any())

    def test_projection_equals_numpy(self, tiny_model):
        cam = Camera(image_size=(80, 100), focal_length=300.0)
        rot = torch.tensor([[0.1, -0.2, 0.05]], dtype=torch.float64)
        trans = torch.tensor([[5.0, -3.0, 40.0]], dtype=torch.float64)
        formed = form_face(tiny_model, cam, _code(rotation=rot, translation=trans))
        # Independent numpy: R = Rz Ry Rx, flip y/z, translate, project.
        p, y, r = rot[0].tolist()
        rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
        ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
        rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
        rmat = np.diag([1.0, -1.0, -1.0]) @ rz @ ry @ rx
        v = tiny_model.mean_shape.numpy() @ rmat.T + trans[0].numpy() + np.array([0, 0, cam.head_distance])
        u = 300.0 * v[:, 0] / v[:, 2] + 50.0
        w = 300.0 * v[:, 1] / v[:, 2] + 40.0
        assert_close(formed.uv[0], torch.from_numpy(np.stack([u, w], -1)))
        assert_close(formed.landmarks_uv[0], formed.uv[0, tiny_model.landmark_indices])

    def test_shapes(self, tiny_model):
        formed = form_face(tiny_model, Camera(32), torch.randn(3, CODE_DIM, dtype=torch.float64) * 0.1)
        n = tiny_model.num_vertices
        assert formed.verts_cam.shape == (3, n, 3) and formed.uv.shape == (3, n, 2)
        assert formed.visible.dtype == torch.bool and formed.landmarks_uv.shape == (3, 68, 2)
        assert formed.image_size == (32, 32)

    def test_gradcheck(self):
        cam = Camera(32)
        small = tiny_face_model(subdivisions=1)

        def fn(code):
            f = form_face(small, cam, code)
            return f.uv, f.colors, f.normals_cam

        code = (torch.randn(1, CODE_DIM, dtype=torch.float64) * 0.1).requires_grad_()
        assert torch.autograd.gradcheck(fn, (code,), fast_mode=True)

    def test_wrong_dtype_vs_model_raises(self, tiny_model):
        with pytest.raises(InputError, match="dtype"):
            form_face(tiny_model, Camera(32), torch.zeros(1, CODE_DIM, dtype=torch.float32))

    def test_nan_code_raises(self, tiny_model):
        code = _code()
        code[0, 240] = float("inf")
        with pytest.raises(InputError, match="NaN or Inf"):
            form_face(tiny_model, Camera(32), code)

    def test_decoder_moves_its_model_like_a_module_and_renders(self, tiny_model):
        decoder = MoFADecoder(tiny_model, Camera(48))
        assert decoder.model.dtype == torch.float64
        with pytest.raises(InputError, match="dtype/device"):
            decoder.form(torch.zeros(1, CODE_DIM))
        assert decoder.float() is decoder and decoder.model.dtype == torch.float32
        assert decoder.model.triangles.dtype == torch.int64 and tiny_model.dtype == torch.float64
        image, mask = decoder.render(torch.zeros(2, CODE_DIM))
        assert image.dtype == torch.float32 and image.shape == (2, 3, 48, 48) and mask.shape == (2, 1, 48, 48)
        assert 0.1 < float(mask.mean()) < 0.9
        # Rendered colour at the centre equals the shaded colour there (lit, not black).
        assert float(image[0, :, 24, 24].min()) > 0.1


def test_with_renderer_keeps_model_camera_and_light(tiny_model):
    decoder = MoFADecoder(tiny_model, Camera(48), ambient_offset=0.5).float()
    assert decoder.with_renderer("per_vertex") is decoder
    from renderers import available_renderers

    if not available_renderers("cpu")["pytorch3d"].available:
        pytest.skip("PyTorch3D is not installed here")
    other = decoder.with_renderer("pytorch3d")
    assert other.renderer.name == "pytorch3d" and other.model is decoder.model
    assert other.camera == decoder.camera and other.ambient_offset == 0.5
    soft = decoder.with_renderer("pytorch3d", blur_radius=0.5, faces_per_pixel=4)
    assert soft is not other and soft.model is decoder.model and soft.ambient_offset == 0.5
    assert soft.renderer.settings.blur_radius == 0.5 and soft.renderer.settings.faces_per_pixel == 4
    assert other.renderer.settings.blur_radius == 0.0  # options are not shared between the two
