"""The analytic MoFA decoder: face model + camera + image formation + a renderer."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch
from torch import nn

from mofa_bench.camera import Camera
from mofa_bench.code_vector import AMBIENT_OFFSET
from mofa_bench.errors import InputError
from mofa_bench.face_model.model import FaceModel
from mofa_bench.formation import FormedFace, form_face, form_geometry
from renderers import PhotometricSamples, Renderer, get_renderer


#: Largest magnitude of a code value :meth:`MoFADecoder.render` draws. A diverging encoder's
#: codes (1e7 and more) still draw, off screen; far beyond, pixel positions overflow the
#: rasterizers' integer indices (codes of 1e30 did).
MAX_CODE_VALUE = 1e12


def _check_arguments(model: Any, camera: Any, renderer: Any, renderer_options: Any, ambient_offset: Any) -> None:
    """:class:`MoFADecoder`'s arguments, each checked (InputError naming it)."""
    if not isinstance(model, FaceModel):
        raise InputError(f"MoFADecoder.model: expected a FaceModel (e.g. FaceModel.load('default')), "
                         f"got {type(model).__name__}")
    if camera is not None and not isinstance(camera, Camera):
        raise InputError(f"MoFADecoder.camera: expected a Camera or None, got {type(camera).__name__}")
    if not isinstance(renderer, (str, Renderer)):
        raise InputError(f"MoFADecoder.renderer: expected a backend name or a Renderer, got {type(renderer).__name__}")
    if renderer_options is not None and not isinstance(renderer_options, dict):
        raise InputError(f"MoFADecoder.renderer_options: expected a dict of backend options, "
                         f"got {type(renderer_options).__name__}")
    if renderer_options and isinstance(renderer, Renderer):
        raise InputError("MoFADecoder.renderer_options: given with a Renderer instance; pass the options to it")
    if isinstance(ambient_offset, bool) or not isinstance(ambient_offset, (int, float)) or \
            not math.isfinite(ambient_offset):
        raise InputError(f"MoFADecoder.ambient_offset: expected a finite number, got {ambient_offset!r}")


class MoFADecoder(nn.Module):
    """Code → formed face → renderer. Has no learnable parameters.

    The face model's arrays move with the decoder like buffers of any ``nn.Module``:
    ``decoder.to("cuda")``, ``decoder.double()`` move and cast them (floating arrays
    only); codes must then be on the same device and dtype.

    Args:
        model: the face model.
        camera: the camera; default ``Camera(240)``.
        renderer: a registered backend name or a :class:`~renderers.base.Renderer`.
        renderer_options: keyword options for the backend.
        ambient_offset: constant-band SH offset.

    Example:
        >>> decoder = MoFADecoder(FaceModel.load("default"), Camera(image_size=240))
        >>> formed = decoder.form(torch.zeros(1, 257))
    """

    def __init__(self, model: FaceModel, camera: Camera | None = None,
                 renderer: str | Renderer = "per_vertex", renderer_options: dict[str, Any] | None = None,
                 ambient_offset: float = AMBIENT_OFFSET) -> None:
        super().__init__()
        _check_arguments(model, camera, renderer, renderer_options, ambient_offset)
        self.model = model
        self.camera = camera or Camera()
        if isinstance(renderer, Renderer):
            self.renderer = renderer
        else:
            try:
                self.renderer = get_renderer(renderer, **(renderer_options or {}))
            except InputError as err:
                key = "renderer_options" if "unknown option" in str(err) else "renderer"
                raise InputError(f"MoFADecoder.{key}: {err}") from None
        self.ambient_offset = float(ambient_offset)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "MoFADecoder":
        super()._apply(fn, recurse)
        changes = {f.name: fn(value) for f in dataclasses.fields(self.model)
                   if isinstance(value := getattr(self.model, f.name), torch.Tensor)}
        self.model = dataclasses.replace(self.model, **changes)
        return self

    def with_renderer(self, renderer: str, **options: Any) -> "MoFADecoder":
        """This decoder's face model, camera and ambient offset with another backend.

        ``self`` when it already uses ``renderer`` and no ``options`` are given; the new
        backend is made for the model's device with ``options`` (e.g. the backend that
        draws synthetic data, the one that scores every method's codes, or a soft
        PyTorch3D: ``with_renderer("pytorch3d", blur_radius=0.5, faces_per_pixel=16)``).

        Raises:
            InputError, RendererUnavailableError: as :func:`renderers.get_renderer`.
        """
        if self.renderer.name == renderer and not options:
            return self
        return MoFADecoder(self.model, self.camera, renderer=get_renderer(renderer, self.model.device, **options),
                           ambient_offset=self.ambient_offset)

    def form(self, code: torch.Tensor) -> FormedFace:
        """Image formation for ``(B, 257)`` codes on the model's device and dtype.

        Codes are taken as they are, never converted: a list or NumPy array, an integer
        or boolean tensor, an empty batch, or a dtype other than the model's (float16
        codes for a float32 model included) is an error naming ``code``; the decoder and
        its face model are left unchanged by any call.

        Raises:
            InputError: ``code`` is not a floating ``(B, 257)`` tensor with B >= 1, or its
                device or dtype differs from the model's (move the decoder with
                ``.to(...)`` or the code).
        """
        if isinstance(code, torch.Tensor) and code.dim() == 2 and code.shape[0] == 0:
            raise InputError("code: expected at least one code (B >= 1), got an empty batch of shape "
                             f"{tuple(code.shape)}")
        return form_face(self.model, self.camera, code, self.ambient_offset)

    def form_geometry(self, vertices: torch.Tensor, reflectance: torch.Tensor, code: torch.Tensor) -> FormedFace:
        """Image formation of ``(B, N, 3)`` geometry (mm) and albedo under the pose and light
        of ``(B, 257)`` codes (:func:`~mofa_bench.formation.form_geometry`; α, δ, β unused)."""
        return form_geometry(self.model, self.camera, vertices, reflectance, code, self.ambient_offset)

    def forward(self, code: torch.Tensor) -> FormedFace:
        return self.form(code)

    def render(self, code: torch.Tensor, background: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Render codes to ``(B, 3, H, W)`` images and ``(B, 1, H, W)`` coverage masks.

        Raises:
            InputError: as :meth:`form`, or a code value beyond ±:data:`MAX_CODE_VALUE`
                (it would put the face at pixel positions no rasterizer can index).
        """
        formed = self.form(code)
        if not bool((code.abs() <= MAX_CODE_VALUE).all()):
            raise InputError(f"code: values up to {float(code.abs().max()):.3g} in magnitude; a code is at most "
                             f"±{MAX_CODE_VALUE:g} (coefficients in standard deviations, radians, mm)")
        result = self.renderer.render(formed, background)
        return result.image, result.mask

    def photometric_samples(self, formed: FormedFace, images: torch.Tensor) -> PhotometricSamples:
        """The renderer's predicted/observed colour pairs for ``(B, 3, H, W)`` images."""
        return self.renderer.photometric_samples(formed, images)
