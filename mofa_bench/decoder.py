"""The analytic MoFA decoder: face model + camera + image formation + a renderer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mofa_bench.camera import Camera
from mofa_bench.code_vector import AMBIENT_OFFSET
from mofa_bench.face_model.model import FaceModel
from mofa_bench.formation import FormedFace, form_face
from renderers import PhotometricSamples, Renderer, get_renderer


class MoFADecoder(nn.Module):
    """Code → formed face → renderer. Has no learnable parameters.

    Args:
        model: the face model (moved with the decoder by :meth:`to_model`).
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
        self.model = model
        self.camera = camera or Camera()
        self.renderer = renderer if isinstance(renderer, Renderer) else get_renderer(renderer, **(renderer_options or {}))
        self.ambient_offset = ambient_offset

    def _model_for(self, code: torch.Tensor) -> FaceModel:
        if self.model.device != code.device or self.model.dtype != code.dtype:
            self.model = self.model.to(code.device, code.dtype)
        return self.model

    def form(self, code: torch.Tensor) -> FormedFace:
        """Image formation for ``(B, 257)`` codes (the model follows the code's device/dtype)."""
        return form_face(self._model_for(code), self.camera, code, self.ambient_offset)

    def forward(self, code: torch.Tensor) -> FormedFace:
        return self.form(code)

    def render(self, code: torch.Tensor, background: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Render codes to ``(B, 3, H, W)`` images and ``(B, 1, H, W)`` coverage masks."""
        result = self.renderer.render(self.form(code), background)
        return result.image, result.mask

    def photometric_samples(self, formed: FormedFace, images: torch.Tensor) -> PhotometricSamples:
        """The renderer's predicted/observed colour pairs for ``(B, 3, H, W)`` images."""
        return self.renderer.photometric_samples(formed, images)
