"""Tests of the ``per_vertex`` backend (``renderers.per_vertex``) on leaf-built meshes."""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from meshes import ellipsoid_mesh
from renderers import Availability, InputError, RendererUnavailableError, available_renderers, get_renderer
from renderers.per_vertex import PerVertexRenderer, sample_image


class TestSampleImage:
    def test_convention_sampling_at_pixel_centre_returns_pixel(self):
        img = torch.rand(1, 3, 6, 7, dtype=torch.float64)
        uv = torch.tensor([[[3.5, 2.5], [0.5, 0.5], [6.5, 5.5]]], dtype=torch.float64)
        out = sample_image(img, uv)
        assert_close(out[0, 0], img[0, :, 2, 3])
        assert_close(out[0, 1], img[0, :, 0, 0])
        assert_close(out[0, 2], img[0, :, 5, 6])

    def test_bilinear_between_centres(self):
        img = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
        img[0, 0, 0, 1] = 1.0
        out = sample_image(img, torch.tensor([[[1.0, 0.5]]], dtype=torch.float64))
        assert float(out[0, 0, 0]) == pytest.approx(0.5)

    def test_gradcheck_wrt_positions(self):
        img = torch.rand(1, 3, 8, 8, dtype=torch.float64)
        uv = (torch.rand(1, 5, 2, dtype=torch.float64) * 6 + 1).requires_grad_()
        assert torch.autograd.gradcheck(lambda p: sample_image(img, p), (uv,))


class TestPerVertexRenderer:
    def test_registry(self):
        assert available_renderers()["per_vertex"].available
        with pytest.raises(InputError, match="known renderers"):
            get_renderer("raytracer")

    def test_samples_of_own_render_equal_vertex_colours(self):
        renderer = PerVertexRenderer()
        mesh = ellipsoid_mesh(size=96, dtype=torch.float64)
        image = renderer.render(mesh).image
        samples = renderer.photometric_samples(mesh, image)
        # Vertices well inside the silhouette (front-facing, facing the camera squarely).
        facing = -(mesh.normals_cam * torch.nn.functional.normalize(mesh.verts_cam, dim=-1)).sum(-1)
        good = facing[0] > 0.5
        assert int(good.sum()) > 10
        assert_close(samples.observed[0, good], mesh.colors[0, good], atol=0.02, rtol=0)

    def test_weights_are_front_facing_and_inside(self):
        mesh = ellipsoid_mesh(size=64, dtype=torch.float64, shift=(60.0, 0.0, 0.0))  # part leaves the image
        s = PerVertexRenderer().photometric_samples(mesh, torch.zeros(1, 3, 64, 64, dtype=torch.float64))
        inside = (mesh.uv[..., 0] <= 64)
        assert bool((~inside).any())
        assert bool((s.weights[~inside] == 0).all())
        assert bool((s.weights.bool() == (mesh.visible & inside & (mesh.uv[..., 0] >= 0))).all())

    def test_wrong_image_size_raises(self):
        mesh = ellipsoid_mesh(size=64, dtype=torch.float64)
        with pytest.raises(InputError, match="images"):
            PerVertexRenderer().photometric_samples(mesh, torch.zeros(1, 3, 32, 32, dtype=torch.float64))

    def test_background_composited(self):
        mesh = ellipsoid_mesh(size=32)
        bg = torch.ones(3, 32, 32)
        out = PerVertexRenderer().render(mesh, background=bg)
        off = out.mask[0, 0] == 0
        assert bool(off.any())
        assert_close(out.image[0][:, off], torch.ones(3, int(off.sum())))

    def test_unavailable_renderer_error_names_fix(self, monkeypatch):
        monkeypatch.setattr(PerVertexRenderer, "availability",
                            classmethod(lambda cls, device=None: Availability(False, "no reason", "do this")))
        with pytest.raises(RendererUnavailableError, match="do this"):
            get_renderer("per_vertex")
