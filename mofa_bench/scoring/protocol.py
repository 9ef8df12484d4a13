"""The evaluation protocol: score predicted codes against a batch's ground truth.

:func:`evaluate_codes` is the one function validation, suites and baselines use. Metrics
(one value per sample, ``(B,)``; a metric is left out when the batch lacks its ground
truth):

- ``photometric``: mean RGB distance between the input and the reconstruction over the
  region the *reconstruction* covers (its coverage mask), channels in [0, 1].
- ``geometric_mm``: the paper's synthetic-data protocol — point-to-point distance (mm) of
  the **posed** meshes (each code's rotation applied to its model-space vertices), after
  translation and isotropic-scale compensation; rotation is not compensated, so a pose
  error counts. Needs ground-truth codes.
- ``geometric_model_mm``: the same on model-space vertices (identity + expression only;
  the pose is excluded). Needs ground-truth codes or vertices.
- ``geometric_procrustes_mm``: posed meshes after rotation, scale and translation
  compensation (shape error alone). Needs ground-truth codes.
- ``landmark_px`` / ``landmark_px_68``: mean 2D distance (px) over the model's 46
  training landmarks / all 68; ``landmark_nme`` / ``landmark_nme_68``: the same divided
  by the target's outer-eye-corner distance (iBUG 36–45). Needs ground-truth landmarks.
- per code part (with ground-truth codes), from :func:`mofa_bench.scoring.code_parts.code_part_errors`.

:func:`vertex_errors` gives the per-vertex posed distances for heat maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mofa_bench.scoring.code_parts import code_part_errors
from mofa_bench.scoring.metrics import aligned_distances, geometric_error, landmark_error, photometric_error
from mofa_bench.decoder import MoFADecoder
from mofa_bench.formation import FormedFace
from mofa_checks import check_tensor

#: iBUG-68 indices of the outer eye corners (right eye 36, left eye 45), 0-based.
OUTER_EYE_CORNERS = (36, 45)


def eye_distance(landmarks: torch.Tensor) -> torch.Tensor:
    """``(B,)`` outer-eye-corner distance (px) of ``(B, 68, 2)`` iBUG landmarks."""
    right, left = OUTER_EYE_CORNERS
    return (landmarks[:, right] - landmarks[:, left]).norm(dim=-1)


def true_face(decoder: MoFADecoder, true_codes: torch.Tensor, vertices: torch.Tensor | None = None) -> FormedFace:
    """The ground-truth face of a batch: its true model-space ``vertices`` ``(B, N, 3)`` (mm)
    posed and lit by its ``(B, 257)`` true codes, or the codes' 3DMM face without vertices.

    The vertices are the truth where a face leaves the decoder's model (the out-of-span
    protocol, :mod:`mofa_bench.data.out_of_span`); in-span they equal the codes' geometry.
    """
    if vertices is None:
        return decoder.form(true_codes)
    vertices = vertices.to(true_codes.dtype)
    return decoder.form_geometry(vertices, torch.zeros_like(vertices), true_codes)


def vertex_errors(decoder: MoFADecoder, codes: torch.Tensor, true_codes: torch.Tensor,
                  formed: FormedFace | None = None, true_vertices: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, N)`` per-vertex distance (mm) of the posed meshes, as in ``geometric_mm``.

    Args:
        formed: the prediction's formed face where it is not ``decoder.form(codes)``.
        true_vertices: ``(B, N, 3)`` true model-space vertices (see :func:`true_face`).
    """
    pred = decoder.form(codes) if formed is None else formed
    return aligned_distances(pred.verts_cam, true_face(decoder, true_codes, true_vertices).verts_cam)


def evaluate_codes(decoder: MoFADecoder, codes: torch.Tensor, batch: Any,
                   rendered: tuple[torch.Tensor, torch.Tensor] | None = None,
                   formed: FormedFace | None = None) -> dict[str, torch.Tensor]:
    """Every protocol metric of predicted codes against a batch.

    Args:
        decoder: the analytic decoder (face model, camera, renderer) the codes belong to;
            its renderer draws the reconstruction for the photometric error.
        codes: ``(B, 257)`` predicted codes, on the decoder's device and dtype.
        batch: a :class:`~mofa_bench.data.batch.FaceBatch` (images; ground truth from
            ``codes``, else ``vertices``; ``landmarks`` and ``landmark_confidence``). With
            both ``codes`` and ``vertices`` the true geometry is the vertices posed by the
            codes (:func:`true_face`).
        rendered: the reconstruction already drawn over black and its coverage,
            ``(B, 3, H, W)`` and ``(B, 1, H, W)``, to reuse instead of rendering again.
        formed: the prediction's formed face where it is not ``decoder.form(codes)`` (a
            multi-level model's corrected face): its geometry, landmarks and drawing are
            scored.

    Returns:
        ``{metric: (B,)}`` (names in the module docstring).
    """
    check_tensor("codes", codes, f"{batch.images.shape[0]} 257", floating=True)
    formed = decoder.form(codes) if formed is None else formed
    if rendered is None:
        result = decoder.renderer.render(formed)
        rendered = (result.image, result.mask)
    face, mask = rendered
    drawn = face + (1 - mask) * batch.images
    out = {"photometric": photometric_error(drawn, batch.images, mask)}
    if batch.codes is not None:
        true_codes = batch.codes.to(codes.dtype)
        out.update(_geometry(formed, true_face(decoder, true_codes, batch.vertices)))
        out.update(code_part_errors(codes, true_codes))
    elif batch.vertices is not None:
        out["geometric_model_mm"] = geometric_error(formed.vertices, batch.vertices.to(codes.dtype))
    if batch.landmarks is not None:
        out.update(_landmarks(formed.landmarks_uv, batch.landmarks.to(codes.dtype), batch.landmark_confidence,
                              decoder.model.landmark_subset))
    return out


def _geometry(pred: FormedFace, true: FormedFace) -> dict[str, torch.Tensor]:
    # Camera-space vertices are the posed meshes plus a translation (and a fixed axis
    # flip shared by both), which the protocol compensates anyway.
    return {
        "geometric_mm": geometric_error(pred.verts_cam, true.verts_cam),
        "geometric_model_mm": geometric_error(pred.vertices, true.vertices),
        "geometric_procrustes_mm": geometric_error(pred.verts_cam, true.verts_cam, compensate_rotation=True),
    }


def _landmarks(pred: torch.Tensor, target: torch.Tensor, confidence: torch.Tensor | None,
               subset: torch.Tensor) -> dict[str, torch.Tensor]:
    eyes = eye_distance(target)
    on_subset = landmark_error(pred, target, subset=subset, confidence=confidence)
    on_all = landmark_error(pred, target, confidence=confidence)
    return {"landmark_px": on_subset, "landmark_px_68": on_all,
            "landmark_nme": on_subset / eyes, "landmark_nme_68": on_all / eyes}


def synthetic_test_batch(config_path: str | None, size: int | None = None,
                         overrides: Sequence[str] = ()) -> tuple[Any, MoFADecoder, Any]:
    """A config's synthetic test faces as one batch, with a per_vertex decoder on the CPU.

    For the protocol's analyses (``mofa-bench diagnose partial-truth``,
    ``mofa-bench diagnose loss-optimum``), which score hand-made codes on the same faces a suite
    tests on.

    Args:
        config_path: train config (YAML) whose model, camera and data define the faces.
        size: number of test faces (default: the config's ``data.test_size``).
        overrides: ``KEY=VALUE`` changes to the config, as ``--set`` takes them (for
            example ``camera.image_size=240``).

    Returns:
        ``(config, decoder, batch)``: the loaded config, the float32 decoder and a
        :class:`~mofa_bench.data.batch.FaceBatch` of the first ``size`` test faces.
    """
    from mofa_bench.config import load_config
    from mofa_bench.data.splits import synthetic_split

    config = load_config(config_path, list(overrides), device="cpu")
    decoder = MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build(), renderer="per_vertex")
    test = synthetic_split(decoder, config.data, "test", size)
    return config, decoder, test.batch(torch.arange(len(test)))
