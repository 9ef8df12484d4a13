"""``reconstruct --method fit``: the per-image fit with what was detected in the photo.

:class:`LandmarkFit` is a code predictor for :func:`~mofa_bench.reconstruct.reconstruct`
that takes, besides the crops, the 68 detected points with their confidences and the
face region of each crop (:class:`~mofa_bench.photos.faces.FramedCrop`):

- the landmark term of the MoFA loss (:func:`~mofa_bench.losses.landmark_loss`, the
  model's 46 training points against the detected ones, each weighted by its
  confidence) anchors the pose and the face's outline to the detection; a photo
  without landmarks (the centre square taken) gets zero confidences, so only its
  photometric term counts;
- the photometric term counts only samples inside the face region
  (:class:`RegionMaskedDecoder`), so hair and background do not pull the fit (Adam only:
  the Levenberg-Marquardt solver evaluates sub-batches and replicated batches, so it
  fits the whole crop).

The landmark weight is the config's ``loss.landmark`` when it is above 0, else
:data:`FIT_LANDMARK_WEIGHT` per px² at 240 px, scaled by ``(240 / S)²`` for S-px crops so
that the same error in face widths weighs the same at any crop size.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from mofa_bench.config import TrainConfig
from mofa_bench.decoder import MoFADecoder
from mofa_bench.formation import FormedFace
from mofa_checks import check_tensor
from renderers import PhotometricSamples

__all__ = ["FIT_LANDMARK_WEIGHT", "LandmarkFit", "RegionMaskedDecoder", "build_landmark_fit"]

#: Landmark weight (per px², summed over the 46 training points) of the fit at 240 px
#: when the config gives none; see reports/real/README.md for how it was chosen.
FIT_LANDMARK_WEIGHT: float = 1e-3


class RegionMaskedDecoder(MoFADecoder):
    """A decoder whose photometric samples count only inside a face region.

    Shares the face model, camera and renderer of ``decoder``. While :attr:`region` is a
    ``(B, 1, H, W)`` mask in [0, 1] (the size of the images compared), each sample's weight
    is multiplied by the mask at the sample's place (read by the renderer itself, so it
    holds for per-vertex samples and for rasterized pixels alike); ``None`` leaves the
    samples as they are.
    """

    def __init__(self, decoder: MoFADecoder) -> None:
        super().__init__(decoder.model, decoder.camera, decoder.renderer, ambient_offset=decoder.ambient_offset)
        self.region: torch.Tensor | None = None

    def photometric_samples(self, formed: FormedFace, images: torch.Tensor) -> PhotometricSamples:
        samples = super().photometric_samples(formed, images)
        if self.region is None:
            return samples
        region = check_tensor("region", self.region, "B 1 H W", {"B": images.shape[0], "H": images.shape[2],
                                                                  "W": images.shape[3]}, floating=True)
        with torch.no_grad():
            inside = self.renderer.photometric_samples(formed, region.to(images).expand(-1, 3, -1, -1)).observed
        return PhotometricSamples(samples.predicted, samples.observed, samples.weights * inside[..., 0])


@dataclasses.dataclass
class LandmarkFit:
    """Per-image fit as a code predictor that uses the detected landmarks and face region.

    Attributes:
        fit: the fit (a :class:`~mofa_bench.methods.fit.FitMethod` over ``decoder``).
        decoder: its :class:`RegionMaskedDecoder`.
        image_size: crop side S, px.
        device: where crops are sent.
        use_region: mask the photometric term by the face region.
    """

    fit: "object"
    decoder: RegionMaskedDecoder
    image_size: int
    device: torch.device
    use_region: bool = True
    uses_landmarks: ClassVar[bool] = True

    def encode(self, images: torch.Tensor, landmarks: torch.Tensor | None = None,
               confidence: torch.Tensor | None = None, region: torch.Tensor | None = None) -> torch.Tensor:
        """Fit ``(B, 257)`` codes to ``(B, 3, S, S)`` crops.

        Args:
            images: the crops, RGB in [0, 1].
            landmarks: ``(B, 68, 2)`` detected iBUG-68 points in crop px, or ``None``.
            confidence: ``(B, 68)`` their confidences (0 for a crop without landmarks).
            region: ``(B, 1, S, S)`` face-region masks, or ``None`` (all ones).
        """
        device, dtype = self.decoder.model.device, self.decoder.model.dtype
        if landmarks is not None:
            landmarks = landmarks.to(device, dtype)
            confidence = None if confidence is None else confidence.to(device, dtype)
        masked = region is not None and self.use_region and getattr(self.fit, "solver", "adam") == "adam"
        self.decoder.region = region.to(device, dtype) if masked else None
        try:
            return self.fit.encode(images.to(device, dtype), landmarks, confidence)  # type: ignore[attr-defined]
        finally:
            self.decoder.region = None


def build_landmark_fit(config: TrainConfig, decoder: MoFADecoder, use_region: bool = True) -> LandmarkFit:
    """The fit of ``config`` (method ``fit``, its ``method_options``) with landmarks and the face region.

    Args:
        config: a resolved config whose ``method`` is ``fit``.
        decoder: the analytic decoder (face model, camera, renderer) on its device.
        use_region: mask the photometric term by the face region.
    """
    from mofa_bench.methods import method_builder

    weight = config.loss.landmark or FIT_LANDMARK_WEIGHT * (240.0 / config.camera.image_size) ** 2
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, landmark=weight))
    masked = RegionMaskedDecoder(decoder)
    fit = method_builder("fit")(config, masked)
    return LandmarkFit(fit, masked, config.camera.image_size, decoder.model.device, use_region)
