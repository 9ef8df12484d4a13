"""Reconstruct faces from photos: code, coloured mesh, overlay.

Per photo: load → square face crop → a code predictor →
257-d code → the analytic decoder. The predictor is anything that maps a batch of crops
to codes (:class:`CodePredictor`): a trained encoder restored by
:func:`load_trained_model`, or any function wrapped in a :class:`CodeModel` (e.g. a
per-image fit). Photos are processed in batches.

Crops (``detector``): ``"mediapipe"`` — and ``"auto"`` where MediaPipe runs — or
``"dlib"``: the face pipeline of :mod:`mofa_bench.photos` (detection, landmarks, and the
crop framed from them the way the model's zero code fills its image, as ``mofa-bench
prepare`` crops training photos); ``"haar"`` (and ``"auto"`` without MediaPipe): the
paper's Haar-cascade box crops of :mod:`mofa_bench.data.images`; ``"none"``: the centre
square.

Written to the output folder, named after each photo's file stem:

- ``<stem>.obj`` / ``<stem>.ply``: the reconstructed mesh with vertex colours. Vertices
  are model space (identity + expression, mm, no head pose) unless ``posed``, then
  camera space (OpenCV axes: x right, y down, z forward, mm). Colours are the reflectance
  (albedo) or, with ``colors="shaded"``, the lit colours of image formation. A
  multi-level model's mesh is its corrected level (3DMM plus correctives).
- ``<stem>_overlay.png``: crop | reconstruction on grey | reconstruction over the crop,
  each at least 256 px, with the detected landmarks (green) and the reconstruction's 68
  projected points (red) drawn (:func:`~mofa_bench.reconstruct_outputs.overlay_picture`).
- ``<stem>_code.npz``: ``code`` ``(257,)`` float32, each named part
  (:data:`~mofa_bench.code_vector.CODE_SLICES`), ``crop_box`` ``(x0, y0, side)`` in
  source pixels, ``image_size`` and ``source``.
- ``<stem>_code.json``: the same as JSON (lists of floats), with ``landmarks_68`` (the
  reconstruction's 68 iBUG points projected, photo px), ``detected_68`` (the detected
  points, photo px, or ``null``), ``landmark_error_px`` and ``landmark_nme`` (their mean
  distance, px and over the detected outer-eye-corner distance); the npz holds the arrays.
- ``reconstructions.csv``: one row per file: file, status (``ok`` / ``failed`` /
  ``skipped``), message (what reading changed, e.g. a greyscale photo converted to RGB,
  or why it failed), crop box, ``landmark_error_px``, ``landmark_nme``, ``landmarks_68``
  (JSON, photo px) and the written files. Photos are read by the project's one
  reader (:mod:`mofa_bench.photos.reader`: any format Pillow opens). A photo that fails
  (unreadable, blank, no face found) is reported there and the others still run; a file
  that is no image (every file of a folder is listed), a grey photo with
  ``grey="skip"``, and an input that is no file at all (a missing path, a FIFO, a
  symbolic-link loop, a dangling link in a scanned folder) are ``skipped``.

Outputs never overwrite an input or each other: photos sharing a stem (``a.jpg``,
``a.png``) are written as ``a_jpg`` and ``a_png``, and a name whose outputs would replace
a photo being read (``--out`` equal to the input folder, holding ``b.png`` and
``b_overlay.png``) gets ``_2``, ``_3``, …; each renaming is logged and noted in the CSV.
Photos larger than :data:`~mofa_bench.data.images.MAX_IMAGE_SIDE` are downscaled while
they are read; crop boxes are still given in source pixels.
"""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import torch

from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.config import TrainConfig, config_from_dict
from mofa_bench.contact_sheet import comparison_tiles
from mofa_bench.data.images import CropBox, Detector, crop_face
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import FaceEncoder, build_encoder
from mofa_bench.environment import resolve_device
from mofa_bench.formation import FormedFace
from mofa_bench.errors import CheckpointError, ConfigError, DatasetError, InputError
from mofa_bench.output_paths import output_folder
from mofa_bench.photos.reader import PhotoReadError, open_photo
from mofa_bench.reconstruct_outputs import LandmarkRecord, encode_crops, landmark_record, overlay_picture
from mofa_bench.reconstruct_inputs import find_images, output_stems, scan_inputs
from mofa_bench.checkpoint import load_checkpoint
from renderers import get_renderer
from mofa_checks import check_tensor

if TYPE_CHECKING:
    from mofa_bench.photos.faces import PhotoFramer

__all__ = [
    "MESH_FORMATS",
    "CodeModel",
    "CodePredictor",
    "PhotoReconstruction",
    "TrainedModel",
    "build_decoder",
    "encoder_weights",
    "find_images",
    "load_trained_model",
    "reconstruct",
    "resolve_checkpoint",
    "scan_inputs",
]


#: Mesh file formats :func:`reconstruct` can write.
MESH_FORMATS: tuple[str, ...] = ("obj", "ply")


class CodePredictor(Protocol):
    """What :func:`reconstruct` needs: crops → codes, and the decoder of those codes.

    A predictor whose class sets ``uses_landmarks = True`` (e.g.
    :class:`~mofa_bench.reconstruct_fit.LandmarkFit`) is called as
    ``encode(images, landmarks, confidence, region)`` with what the face pipeline detected
    (:func:`~mofa_bench.reconstruct_outputs.encode_crops`).

    Attributes:
        decoder: the analytic decoder (face model, camera, renderer) of the codes.
        device: where crops are sent.
        image_size: side of the square crops, px.
    """

    decoder: MoFADecoder
    device: torch.device

    @property
    def image_size(self) -> int: ...

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` crops, RGB in [0, 1] → ``(B, 257)`` codes (called under ``no_grad``)."""
        ...


@dataclass
class CodeModel:
    """Any function from crops to codes, with the decoder of its codes (a :class:`CodePredictor`).

    Attributes:
        encode: ``(B, 3, S, S)`` crops → ``(B, 257)`` codes. It is called under
            ``torch.no_grad``; a function that optimises (a per-image fit) enables
            gradients itself.
        decoder: the analytic decoder of the codes.
        image_size: S, the side of the crops, px.
        device: where crops are sent.
    """

    encode: Callable[[torch.Tensor], torch.Tensor]
    decoder: MoFADecoder
    image_size: int
    device: torch.device


@dataclass
class TrainedModel:
    """An encoder restored from a checkpoint, with the decoder it was trained against.

    Attributes:
        config: the run's resolved config (stored in the checkpoint).
        encoder: the encoder in eval mode on ``device``.
        decoder: face model + camera + renderer from the config.
        device: where both run.
        step: the training step the checkpoint was written at.
        checkpoint: the file it came from.
        method: the whole trained method where its faces are more than its codes' 3DMM
            faces (the multi-level model's corrected meshes), else ``None``.
    """

    config: TrainConfig
    encoder: FaceEncoder
    decoder: MoFADecoder
    device: torch.device
    step: int
    checkpoint: Path
    method: Any = None

    @property
    def image_size(self) -> int:
        """Side of the square crops the encoder takes, px."""
        return self.config.camera.image_size

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` crops → ``(B, 257)`` float32 codes of the encoder."""
        return self.encoder(images).float()

    def form(self, images: torch.Tensor, code: torch.Tensor) -> FormedFace:
        """The faces :func:`reconstruct` exports for crops and their codes: the method's own
        (``Reconstruction.formed``, e.g. corrected meshes) where it has them, else ``decoder.form(code)``."""
        formed = self.method.reconstruct(images).formed if self.method is not None else None
        return self.decoder.form(code) if formed is None else formed


@dataclass
class PhotoReconstruction:
    """What :func:`reconstruct` did with one photo."""

    source: Path
    status: str
    message: str = ""
    crop_box: CropBox | None = None
    outputs: list[Path] = field(default_factory=list)
    landmarks: LandmarkRecord | None = None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/best.pt`` (else ``last.pt``).

    Raises:
        CheckpointError: nothing usable at ``path``.
    """
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt",
                          path / "best.pt", path / "last.pt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path}: no checkpoints/best.pt or checkpoints/last.pt in this run directory")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_trained_model(checkpoint: str | Path, device: str | torch.device = "auto",
                       renderer: str | None = None) -> TrainedModel:
    """Restore the encoder and decoder of a training run.

    Args:
        checkpoint: a ``.pt`` written by the trainer, or its run directory.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:i]"``.
        renderer: draw the overlays with this backend instead of the run's.

    Raises:
        CheckpointError: missing, corrupted, or without a usable config.
        RendererUnavailableError: the renderer cannot run on ``device``.
    """
    path = resolve_checkpoint(checkpoint)
    target = resolve_device(device)
    state = load_checkpoint(path, "cpu")
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"checkpoint {path} holds no run config; it was not written by mofa-bench train")
    try:
        config = config_from_dict(state["config"], check_paths=False)
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path}: its run config is not valid here ({err})") from err
    encoder = build_encoder(config.encoder.name, image_size=config.camera.image_size)
    weights = _checked_weights(path, encoder_weights(state), "method" if "method" in state else "encoder")
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path}: encoder weights do not fit a {config.encoder.name} "
                              f"encoder ({err})") from err
    encoder.to(target).eval()
    decoder = build_decoder(config, target, renderer)
    method = None
    if config.method == "multilevel":  # its meshes need the corrective level too
        from mofa_bench.methods import build_method

        method = build_method(config, decoder)
        weights = _checked_weights(path, state.get("method"), "method")
        try:
            method.load_state_dict(weights)
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(f"checkpoint {path}: the multilevel method's weights do not fit ({err})") from err
        method.eval()
        encoder = method.encoder
    return TrainedModel(config, encoder, decoder, target, int(state.get("step", 0)), path, method)


def _checked_weights(path: Path, weights: Any, what: str) -> dict[str, torch.Tensor]:
    """``weights`` if it is a mapping of finite tensors, else a :class:`CheckpointError` naming ``path``."""
    if not isinstance(weights, dict):
        raise CheckpointError(f"checkpoint {path}: '{what}' must be a mapping of weight tensors, "
                              f"got {type(weights).__name__}")
    for name, value in weights.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint {path}: {what} weight {name!r} is a {type(value).__name__}, "
                                  f"not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"checkpoint {path}: {what} weight {name!r} has {bad} NaN or infinite value(s); "
                                  f"use an earlier checkpoint of the run")
    return weights


def build_decoder(config: TrainConfig, device: torch.device, renderer: str | None = None) -> MoFADecoder:
    """The analytic decoder a config names (face model, camera, renderer), on ``device``.

    Args:
        config: a resolved config.
        device: where the face model and renderer run.
        renderer: use this backend (with its default options) instead of the config's.

    Raises:
        RendererUnavailableError: the renderer cannot run on ``device``.
    """
    face_model = config.model.load().to(device, torch.float32)
    name = renderer or config.renderer.name
    options = config.renderer.options if name == config.renderer.name else {}
    return MoFADecoder(face_model, config.camera.build(), renderer=get_renderer(name, device, **options))


def encoder_weights(state: dict) -> dict[str, torch.Tensor]:
    """The encoder's state dict in a trainer checkpoint.

    A MoFA method's state (``state["method"]``) holds the encoder under ``encoder.``;
    checkpoints written before methods existed hold it as ``state["encoder"]``.
    """
    if "method" in state:
        prefix = "encoder."
        if not isinstance(state["method"], dict):
            return state["method"]  # refused by the caller's checks, naming the entry
        return {key[len(prefix):]: value for key, value in state["method"].items() if key.startswith(prefix)}
    return state["encoder"]


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _write_code(code: torch.Tensor, box: CropBox, source: Path, image_size: int, stem_path: Path,
                landmarks: LandmarkRecord | None = None) -> list[Path]:
    """``<stem>_code.npz`` and ``<stem>_code.json`` for one ``(257,)`` code (and its landmarks)."""
    values = code.detach().cpu().float().numpy()
    parts = {name: values[s] for name, s in CODE_SLICES.items()}
    npz = stem_path.with_name(stem_path.name + "_code.npz")
    arrays = {}
    if landmarks is not None:
        arrays["landmarks_68"] = landmarks.projected
        if landmarks.detected is not None:
            arrays["detected_68"] = landmarks.detected
    np.savez(npz, code=values, crop_box=np.asarray(box, dtype=np.int64), image_size=np.int64(image_size),
             source=np.array(str(source)), **parts, **arrays)
    record = {"source": str(source), "image_size": image_size, "crop_box": list(box),
              "code": values.tolist(), "parts": {name: part.tolist() for name, part in parts.items()},
              **(landmarks.as_dict() if landmarks is not None else {})}
    js = stem_path.with_name(stem_path.name + "_code.json")
    js.write_text(json.dumps(record, indent=1))
    return [npz, js]


def _photo_framer(detector: Detector) -> "PhotoFramer | None":
    """The :mod:`mofa_bench.photos` cropper for ``detector``, or ``None`` where :func:`crop_face` crops."""
    from mofa_bench.photos.detection import mediapipe_availability
    from mofa_bench.photos.faces import PhotoFramer

    if not isinstance(detector, str) or detector not in ("auto", "mediapipe", "dlib"):
        return None
    mediapipe = mediapipe_availability().available
    if detector == "auto":
        return PhotoFramer("mediapipe") if mediapipe else None
    return PhotoFramer(detector, "mediapipe" if mediapipe else None)


def reconstruct(model: CodePredictor, inputs: Sequence[str | Path], out_dir: str | Path, *,
                batch_size: int = 16, detector: Detector = "auto", allow_no_face: bool = False,
                mesh_formats: Sequence[str] = MESH_FORMATS, colors: str = "reflectance", posed: bool = False,
                recursive: bool = False, progress: bool = True, grey: str = "convert") -> list[PhotoReconstruction]:
    """Reconstruct every photo in ``inputs`` (files or folders) into ``out_dir``.

    Args:
        model: the code predictor: from :func:`load_trained_model`, or a :class:`CodeModel`.
        inputs: image files and/or folders of images.
        out_dir: output folder (created).
        batch_size: photos per batch of the predictor.
        detector: face crops (module docstring): ``"auto"``, ``"mediapipe"``, ``"dlib"``,
            ``"haar"``, ``"none"`` or a callable (see :func:`~mofa_bench.data.images.crop_face`).
        allow_no_face: use the centre square, with a warning, when no face is detected.
        mesh_formats: any of ``"obj"``, ``"ply"``.
        colors: ``"reflectance"`` (albedo) or ``"shaded"`` vertex colours.
        posed: camera-space vertices instead of model space.
        recursive: search folders recursively.
        progress: show a progress bar.
        grey: greyscale photos are ``"convert"``-ed to RGB (noted in the message) or
            ``"skip"``-ped.

    Returns:
        One :class:`PhotoReconstruction` per photo, in input order, then one per skipped input
        (status ``skipped``: missing path, FIFO, link loop, dangling link); all are also
        written to ``reconstructions.csv``.

    Raises:
        InputError: bad options, or ``out_dir`` is a file or cannot be written.
        DatasetError: no input at all (nothing found and nothing skipped).
    """
    from PIL import Image
    from tqdm.auto import tqdm

    formats = [f.lower().lstrip(".") for f in mesh_formats]
    unknown = sorted(set(formats) - set(MESH_FORMATS))
    if unknown:
        raise InputError(f"mesh_formats: unknown {unknown}; choose from {list(MESH_FORMATS)}")
    if colors not in ("reflectance", "shaded"):
        raise InputError(f"colors: expected 'reflectance' or 'shaded', got {colors!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InputError(f"batch_size: expected a positive int, got {batch_size!r}")
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out = output_folder(out_dir, "out_dir")
    files, skipped_inputs = scan_inputs(inputs, recursive)
    skipped = [PhotoReconstruction(path, "skipped", message) for path, message in skipped_inputs]
    if not files and not skipped:
        raise DatasetError(f"no files in {', '.join(str(i) for i in inputs)}")
    results = [PhotoReconstruction(file, "pending") for file in files]
    named = output_stems(files, out, formats)
    stems = [stem for stem, _ in named]
    size = model.image_size
    face_model = model.decoder.model

    framer = _photo_framer(detector)
    detected: dict[int, object] = {}
    bar = tqdm(total=len(files), disable=not progress, desc="reconstruct", unit="photo", dynamic_ncols=True)
    try:
        for chunk in _chunks(list(range(len(files))), batch_size):
            crops, kept = [], []
            for i in chunk:
                try:
                    read = open_photo(files[i], grey=grey)
                    photo, scale = read.tensor(), read.scale
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        if framer is not None:
                            detected[i] = framer.frame(photo, size, allow_no_face=allow_no_face, source=files[i])
                            crop, box = detected[i].crop, detected[i].box
                        else:
                            crop, box = crop_face(photo, size, detector, allow_no_face=allow_no_face,
                                                  source=files[i], return_box=True)
                    for w in caught:
                        warnings.warn(w.message, w.category, stacklevel=2)
                    notes = ([named[i][1]] if named[i][1] else []) + list(read.notes)
                    results[i].message = "; ".join(notes + [str(w.message) for w in caught])
                except PhotoReadError as err:
                    status = "skipped" if err.kind in ("not_image", "grey") else "failed"
                    results[i].status, results[i].message = status, str(err)
                    continue
                except (DatasetError, InputError) as err:
                    results[i].status, results[i].message = "failed", str(err)
                    continue
                if scale != 1.0:  # crop boxes are in source pixels
                    box = (round(box[0] / scale), round(box[1] / scale), round(box[2] / scale))
                results[i].crop_box = box
                crops.append(crop)
                kept.append(i)
            if crops:
                images = torch.stack(crops).to(model.device)
                with torch.no_grad():
                    code = check_tensor("codes", encode_crops(model, images, [detected.get(i) for i in kept]).float(),
                                        f"{len(kept)} {CODE_DIM}")
                    form = getattr(model, "form", None)  # a predictor's own faces (corrected meshes)
                    formed = form(images, code) if form is not None else model.decoder.form(code)
                    drawn = model.decoder.renderer.render(formed)
                    face, mask = drawn.image, drawn.mask
                    tiles = comparison_tiles(images, face, mask).cpu()
                for row, i in enumerate(kept):
                    stem_path = out / stems[i]
                    vertices = formed.verts_cam[row] if posed else formed.vertices[row]
                    vertex_colors = formed.colors[row] if colors == "shaded" else formed.reflectance[row]
                    written = [face_model.export_mesh(stem_path.with_name(f"{stem_path.name}.{fmt}"), vertices,
                                                      vertex_colors) for fmt in formats]
                    points = getattr(detected.get(i), "landmarks", None)
                    record = landmark_record(formed.landmarks_uv[row], results[i].crop_box, size, points)
                    results[i].landmarks = record
                    overlay = stem_path.with_name(stem_path.name + "_overlay.png")
                    Image.fromarray(overlay_picture(tiles[row], formed.landmarks_uv[row].cpu().numpy(),
                                                    points)).save(overlay)
                    written.append(overlay)
                    written += _write_code(code[row], results[i].crop_box, files[i], size, stem_path, record)
                    results[i].status, results[i].outputs = "ok", written
            bar.update(len(chunk))
    finally:  # the face pipeline's native resources are released even when a batch raises
        bar.close()
        if framer is not None:
            framer.close()
    results += skipped
    _write_index(results, out / "reconstructions.csv")
    return results


def _write_index(results: Sequence[PhotoReconstruction], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "status", "message", "crop_x0", "crop_y0", "crop_side", "landmark_error_px",
                         "landmark_nme", "landmarks_68", "outputs"])
        for r in results:
            box = r.crop_box or ("", "", "")
            marks = r.landmarks.as_dict() if r.landmarks is not None else {}
            values = [marks.get("landmark_error_px"), marks.get("landmark_nme"),
                      json.dumps(marks["landmarks_68"], separators=(",", ":")) if marks else ""]
            writer.writerow([str(r.source), r.status, r.message, *box, *("" if v is None else v for v in values),
                             " ".join(p.name for p in r.outputs)])
    return path
