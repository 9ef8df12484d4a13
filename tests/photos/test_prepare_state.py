"""Prepared folders are safe to rerun (#30 item 2): --out inside the input, changed photos, corrupt state files."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mofa_bench.errors import DatasetError, InputError
from mofa_bench.photos.prepare import MANIFEST_COLUMNS, PrepareSettings, prepare_folder

SMALL = PrepareSettings(size=64, max_pixels=600_000)


@pytest.fixture
def photos(tmp_path: Path, astronaut: np.ndarray, needs_mediapipe) -> Path:
    """``a.png`` (a face) and ``b.png`` (noise, no face)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut[::2, ::2]).save(folder / "a.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(folder / "b.png")
    return folder


def _prepare(folder: Path, out: Path, **options):
    return prepare_folder(folder, out, SMALL, progress=False, **options)


def _statuses(frame) -> dict[str, str]:
    return dict(zip(frame["source"], frame["status"]))


def test_out_as_the_input_folder_is_never_read_as_input(photos):
    counts = [len(_prepare(photos, photos)) for _ in range(3)]
    assert counts == [2, 2, 2]
    frame = pd.read_parquet(photos / "manifest.parquet")
    assert sorted(frame["source"]) == ["a.png", "b.png"]
    assert sorted(p.relative_to(photos).as_posix() for p in (photos / "crops").rglob("*.png")) == ["crops/a.png"]


def test_out_inside_the_input_folder_is_never_read_as_input(photos):
    for _ in range(2):
        frame = _prepare(photos, photos / "prepared")
    assert sorted(frame["source"]) == ["a.png", "b.png"] and list(frame.columns) == list(MANIFEST_COLUMNS)


def test_a_changed_photo_is_redone_and_said_so(photos, tmp_path, caplog):
    out = tmp_path / "out"
    first = _prepare(photos, out)
    assert _statuses(first) == {"a.png": "ok", "b.png": "skipped"}
    crop = out / "crops" / "a.png"
    assert crop.is_file()
    os.replace(photos / "b.png", photos / "keep.bin")
    (photos / "b.png").write_bytes((photos / "a.png").read_bytes())  # b now has the face
    os.replace(photos / "keep.bin", photos / "a.png")                  # and a none
    with caplog.at_level(logging.WARNING):
        second = _prepare(photos, out)
    assert _statuses(second) == {"a.png": "skipped", "b.png": "ok"}
    assert "2 photos changed since they were prepared, prepared again: a.png, b.png" in caplog.text
    assert not crop.exists() and (out / "crops" / "b.png").is_file()
    row = second.set_index("source").loc["b.png"]
    assert row["file_size"] == (photos / "b.png").stat().st_size and len(row["file_sha256"]) == 64


def test_a_touched_photo_with_the_same_content_is_kept(photos, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _prepare(photos, out)
    os.utime(photos / "a.png", ns=(10**18, 10**18))
    from mofa_bench.photos import prepare as module

    seen: list[str] = []
    original = module._process
    monkeypatch.setattr(module, "_process", lambda job: (seen.append(job[0].source), original(job))[1])
    frame = _prepare(photos, out)
    assert seen == [] and frame.set_index("source").loc["a.png", "file_mtime_ns"] == 10**18


def test_a_folder_prepared_before_fingerprints_is_adopted(photos, tmp_path, caplog):
    out = tmp_path / "out"
    _prepare(photos, out)
    frame = pd.read_parquet(out / "manifest.parquet")
    frame.drop(columns=["file_size", "file_mtime_ns", "file_sha256"]).to_parquet(out / "manifest.parquet")
    with caplog.at_level(logging.WARNING):
        again = _prepare(photos, out)
    assert "recorded the file fingerprints of 2 photos" in caplog.text
    assert again["file_sha256"].notna().all()


def test_an_unreadable_prepare_json_is_rebuilt_when_the_manifest_agrees(photos, tmp_path, caplog):
    out = tmp_path / "out"
    _prepare(photos, out)
    (out / "prepare.json").write_text('{"size": 6')
    with caplog.at_level(logging.WARNING):
        assert len(_prepare(photos, out)) == 2
    assert "prepare.json is unreadable (JSONDecodeError); rebuilt" in caplog.text
    assert json.loads((out / "prepare.json").read_text())["size"] == 64
    (out / "prepare.json").write_text("[")
    with pytest.raises(InputError, match=r"prepare\.json is unreadable \(JSONDecodeError\) and its crops are 64 px, "
                                         r"now size=128; prepare with those settings, or use another --out"):
        prepare_folder(photos, out, PrepareSettings(size=128, max_pixels=SMALL.max_pixels), progress=False)


def test_an_unreadable_manifest_is_refused_with_the_fix(photos, tmp_path):
    out = tmp_path / "out"
    _prepare(photos, out)
    (out / "manifest.parquet").write_bytes(b"PAR1 cut short")
    with pytest.raises(DatasetError, match=r"manifest\.parquet: unreadable manifest .*; move .*manifest\.parquet "
                                           r"away to prepare every photo again"):
        _prepare(photos, out)
