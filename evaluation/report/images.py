"""The report's pictures: the qualitative grid and per-vertex error heat maps on the mean face.

- :func:`plot_qualitative`: one row per test image of ``inputs.pt``: the input, then each
  series' reconstruction (its first ok seed) composited over the input with its mask.
- :func:`plot_vertex_errors`: each series' ``vertex_error_mm.npy`` (mean over seeds)
  coloured on the mean face of the run's face model, drawn by the ``per_vertex`` renderer
  with the run's camera (enlarged to at least :data:`HEAT_MAP_SIZE` px), one colour
  scale for all panels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from evaluation.report.figures import pyplot, save_figure
from evaluation.report.load import Suite, SuiteRun

__all__ = [
    "HEAT_MAP_SHADE",
    "HEAT_MAP_SIZE",
    "composite",
    "mean_face_heat_map",
    "plot_qualitative",
    "plot_vertex_errors",
]

#: Smallest side of a heat-map render, px (the camera is scaled up to it).
HEAT_MAP_SIZE = 256
#: Share of a heat-map colour modulated by head-on light, so the face's shape stays readable.
HEAT_MAP_SHADE = 0.35


def composite(image: Any, mask: Any, background: Any) -> Any:
    """A reconstruction over black laid over the input: ``image + (1 − mask) · background``.

    Args:
        image: ``(K, 3, H, W)`` reconstruction over black, [0, 1].
        mask: ``(K, 1, H, W)`` coverage in [0, 1].
        background: ``(K, 3, H, W)`` input images, [0, 1] (resized to ``H × W`` when they differ).

    Returns:
        ``(K, 3, H, W)`` in [0, 1].
    """
    import torch.nn.functional as F

    if background.shape[-2:] != image.shape[-2:]:
        background = F.interpolate(background, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return (image.float() + (1 - mask.float()) * background.float()).clamp(0, 1)


def _first_with(runs: list[SuiteRun], read: str) -> tuple[SuiteRun, Any] | None:
    for run in sorted(runs, key=lambda r: (r.row["seed"] is None, r.row["seed"] or 0)):
        value = getattr(run, read)()
        if value is not None:
            return run, value
    return None


def _runs_by_series(suite: Suite) -> dict[str, list[SuiteRun]]:
    by_series: dict[str, list[SuiteRun]] = {}
    for run in suite.ok_runs():
        by_series.setdefault(run.series, []).append(run)
    return by_series


def plot_qualitative(suite: Suite, path: str | Path, max_images: int = 6) -> Path | None:
    """Input | reconstruction per series, one row per test image of ``inputs.pt``.

    Returns:
        the PNG, or ``None`` without ``inputs.pt`` or without any ``test_reconstructions.pt``.
    """
    inputs = suite.inputs()
    if inputs is None:
        return None
    images = inputs["images"][:max_images].float().clamp(0, 1)
    indices = [int(i) for i in inputs.get("indices", range(len(images)))][: len(images)]
    columns: list[tuple[str, Any]] = []
    for series, runs in _runs_by_series(suite).items():
        found = _first_with(runs, "reconstructions")
        if found is None:
            continue
        run, rec = found
        k = min(len(images), len(rec["image"]))
        label = series.replace(" · ", "\n") + f"\nseed {run.row['seed']}"
        columns.append((label, composite(rec["image"][:k], rec["mask"][:k], images[:k])))
    if not columns:
        return None
    plt = pyplot()
    rows, cols = len(images), 1 + len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.7 * rows + 0.7), squeeze=False)
    for r in range(rows):
        panels = [("input", images[r])] + [(label, pics[r] if r < len(pics) else None) for label, pics in columns]
        for c, (label, picture) in enumerate(panels):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if picture is not None:
                ax.imshow(picture.permute(1, 2, 0).numpy())
            if r == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"test {indices[r]}", fontsize=8)
    fig.suptitle("Test reconstructions over the input (first test images)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def _scaled_camera(camera: Any, min_size: int) -> Any:
    """The same view at ``≥ min_size`` px: size, focal length and principal point scaled alike."""
    h, w = camera.size
    scale = max(1, -(-min_size // min(h, w)))
    if scale == 1:
        return camera
    point = camera.principal_point
    return dataclasses.replace(camera, image_size=(h * scale, w * scale), focal_length=camera.focal * scale,
                               principal_point=None if point is None else (point[0] * scale, point[1] * scale))


def mean_face_heat_map(config: dict[str, Any], errors_mm: Any, cmap: Any, norm: Any,
                       min_size: int = HEAT_MAP_SIZE, models: dict[str, Any] | None = None,
                       shade: float = HEAT_MAP_SHADE) -> Any:
    """Per-vertex values coloured on the mean face, over white.

    A vertex's colour is ``cmap(norm(value)) · (1 − shade + shade · max(0, −n_z))`` with
    ``n_z`` the camera-space normal's z (−1 facing the camera): full colour where the face
    looks at the camera, down to ``1 − shade`` of it at grazing angles.

    Args:
        config: a run's config as a dict (its ``model`` and ``camera`` sections are used).
        errors_mm: ``(N,)`` per-vertex values, mm; ``N`` must be the model's vertex count.
        cmap: a matplotlib colormap; ``norm``: its normalisation (mm → [0, 1]).
        min_size: smallest side of the picture, px.
        models: cache ``{model section as text: FaceModel}`` shared across calls.
        shade: share of the colour modulated by head-on light, in [0, 1] (0: flat colours).

    Returns:
        ``(H, W, 3)`` float numpy RGB in [0, 1].

    Raises:
        ReportError: the vertex count differs from the model's.
    """
    import numpy as np
    import torch
    import yaml

    from evaluation.report.load import ReportError
    from mofa_bench import MoFADecoder, zero_code
    from mofa_bench.config import config_from_dict

    cfg = config_from_dict({"model": config.get("model") or {}, "camera": config.get("camera") or {}})
    key = yaml.safe_dump(config.get("model") or {}, sort_keys=True)
    models = {} if models is None else models
    if key not in models:
        models[key] = cfg.model.load()
    model = models[key]
    errors = np.asarray(errors_mm, dtype=np.float64).reshape(-1)
    if errors.shape[0] != model.num_vertices:
        raise ReportError(f"vertex errors have {errors.shape[0]} values, the run's face model "
                          f"{model.num_vertices} vertices")
    decoder = MoFADecoder(model, _scaled_camera(cfg.camera.build(), min_size), "per_vertex")
    formed = decoder.form(zero_code(1, dtype=model.dtype, device=model.device))
    colors = torch.as_tensor(cmap(norm(errors))[:, :3], dtype=model.dtype, device=model.device)[None]
    facing = (-formed.normals_cam[..., 2:]).clamp(0, 1)
    colors = colors * (1 - shade + shade * facing)
    drawn = decoder.renderer.render(dataclasses.replace(formed, colors=colors))
    picture = drawn.image + (1 - drawn.mask)
    return picture[0].permute(1, 2, 0).clamp(0, 1).detach().cpu().numpy()


def _series_errors(runs: list[SuiteRun]) -> tuple[Any, int, dict[str, Any] | None] | None:
    """Mean over seeds of a series' vertex errors ``(N,)``, the seed count, and a config of its runs."""
    import numpy as np

    arrays = [(run, a) for run in runs if (a := run.vertex_error_mm()) is not None]
    if not arrays:
        return None
    n = arrays[0][1].shape[0]
    same = [a for _, a in arrays if a.shape == (n,)]
    config = next((c for run, _ in arrays if (c := run.config()) is not None), None)
    return np.mean(same, axis=0), len(same), config


def plot_vertex_errors(suite: Suite, path: str | Path,
                       min_size: int = HEAT_MAP_SIZE) -> tuple[Path | None, list[str]]:
    """Heat maps of the mean posed per-vertex error on the mean face, one panel per series.

    A series whose runs have no ``config.yaml`` (e.g. per-image optimisation) borrows the
    face model and camera of another run of the suite with the same vertex count.

    Returns:
        ``(PNG or None, notes)``: ``None`` when no series could be drawn; a note per series
        left out, saying why.
    """
    import numpy as np

    from evaluation.report.load import ReportError
    from mofa_bench.errors import MofaBenchError

    panels: list[tuple[str, Any, int, dict[str, Any] | None]] = []
    for series, runs in _runs_by_series(suite).items():
        found = _series_errors(runs)
        if found is not None:
            panels.append((series, *found))
    if not panels:
        return None, []
    configs = [c for run in suite.ok_runs() if (c := run.config()) is not None]
    vmax = float(max(np.percentile(errors, 99) for _, errors, _, _ in panels))
    plt = pyplot()
    import matplotlib.colors

    cmap, norm = plt.get_cmap("viridis"), matplotlib.colors.Normalize(vmin=0.0, vmax=max(vmax, 1e-6))
    models: dict[str, Any] = {}
    pictures, notes = [], []
    for series, errors, seeds, config in panels:
        candidates = [config] if config is not None else configs
        for candidate in candidates:
            try:
                picture = mean_face_heat_map(candidate, errors, cmap, norm, min_size, models)
            except ReportError as err:
                note = str(err)
                continue
            except MofaBenchError as err:
                note = f"its face model or camera could not be loaded: {err}"
                continue
            pictures.append((series, picture, seeds, float(errors.mean())))
            break
        else:
            notes.append(f"{series}: no heat map ({note if candidates else 'no run of the suite has a config.yaml'})")
    if not pictures:
        return None, notes
    fig, axes = plt.subplots(1, len(pictures), figsize=(2.6 * len(pictures) + 0.9, 3.2), squeeze=False)
    for ax, (series, picture, seeds, mean) in zip(axes[0], pictures):
        ax.imshow(picture)
        ax.set_axis_off()
        ax.set_title(f"{series}\nmean {mean:.2f} mm ({seeds} seed{'s' if seeds != 1 else ''})", fontsize=8)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=list(axes[0]), fraction=0.046 / max(1, len(pictures)) * 2, pad=0.02,
                 label="mean posed vertex error (mm)")
    fig.suptitle("Per-vertex geometric error over the test set, on the mean face", fontsize=10)
    return save_figure(fig, Path(path)), notes
