"""Synthetic ground-truth faces: on the fly, written to shards and read back."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from helpers import assert_close
from mofa_bench import Camera, MoFADecoder
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.data import BackgroundConfig, FaceBatch, ShardedFaces, SyntheticFaces, write_synthetic_dataset
from mofa_bench.data.synthetic import sample_seed, stored_fields
from mofa_bench.errors import DatasetError, InputError
from mofa_bench.sampling import CodePrior

#: Images of the same sample rendered in different batches may differ by float noise.
IMAGE_ATOL = 1e-5


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(48))


@pytest.fixture(scope="module")
def dataset(decoder):
    return SyntheticFaces(decoder, size=12, seed=5)


@pytest.fixture(scope="module")
def written(dataset, tmp_path_factory):
    return write_synthetic_dataset(dataset, tmp_path_factory.mktemp("synthetic"), shard_size=5, progress=False)


@pytest.fixture
def copy(written, tmp_path):
    """A private copy of the written dataset (shards of 5, 5 and 2 samples)."""
    return shutil.copytree(written, tmp_path / "copy")


class TestSyntheticFaces:
    def test_batch_fields_and_shapes(self, dataset):
        batch = dataset.batch(torch.tensor([0, 3, 11]))
        assert isinstance(batch, FaceBatch)
        n = dataset.decoder.model.num_vertices
        assert batch.images.shape == (3, 3, 48, 48) and batch.masks.shape == (3, 1, 48, 48)
        assert batch.codes.shape == (3, 257) and batch.vertices.shape == (3, n, 3)
        assert batch.landmarks.shape == (3, 68, 2) and batch.landmark_confidence.shape == (3, 68)
        assert torch.equal(batch.indices, torch.tensor([0, 3, 11]))
        assert torch.equal(batch.landmark_confidence, torch.ones(3, 68))
        assert float(batch.images.min()) >= 0.0 and float(batch.images.max()) <= 1.0
        assert len(dataset) == 12

    def test_sample_depends_only_on_its_index(self, dataset):
        alone = dataset.batch(torch.tensor([7]))
        mixed = dataset.batch(torch.tensor([2, 7, 0, 7]))
        assert torch.equal(alone.codes[0], mixed.codes[1]) and torch.equal(alone.codes[0], mixed.codes[3])
        assert_close(mixed.images[1], alone.images[0], rtol=0, atol=IMAGE_ATOL)
        assert_close(mixed.images[3], alone.images[0], rtol=0, atol=IMAGE_ATOL)
        assert torch.equal(mixed.masks[1], alone.masks[0])

    def test_new_instance_reproduces_samples(self, decoder, dataset):
        again = SyntheticFaces(decoder, size=12, seed=5)
        assert torch.equal(again.codes(torch.arange(12)), dataset.codes(torch.arange(12)))
        assert torch.equal(again.background_images(torch.arange(3)), dataset.background_images(torch.arange(3)))

    def test_convention_sample_seed_is_pinned(self):
        """Per-sample seeds are plain integer arithmetic: identical in every process."""
        assert sample_seed(0, 0, 0) == 2558736989570252433
        assert sample_seed(5, 7, 1) == sample_seed(5, 7, 1)
        assert len({sample_seed(s, i, k) for s in range(3) for i in range(50) for k in range(2)}) == 300

    def test_different_seeds_differ(self, decoder, dataset):
        other = SyntheticFaces(decoder, size=12, seed=6)
        assert not torch.allclose(other.codes(torch.arange(4)), dataset.codes(torch.arange(4)))

    def test_split_never_shares_samples(self, decoder):
        train, val = SyntheticFaces.split(decoder, train_size=8, val_size=4, seed=1)
        assert (len(train), len(val)) == (8, 4)
        whole = SyntheticFaces(decoder, size=12, seed=1)
        assert torch.equal(val.codes(torch.arange(4)), whole.codes(torch.arange(8, 12)))
        train_codes, val_codes = train.codes(torch.arange(8)), val.codes(torch.arange(4))
        assert torch.cdist(train_codes, val_codes).min() > 1.0

    def test_codes_follow_the_prior(self, decoder):
        prior = CodePrior(yaw_deg=5.0, pitch_deg=0.0, roll_deg=0.0)
        codes = SyntheticFaces(decoder, size=64, seed=0, prior=prior).codes(torch.arange(64))
        rotation = codes[:, CODE_SLICES["rotation"]]
        assert float(rotation[:, 1].abs().max()) <= 5.0 * torch.pi / 180 + 1e-6
        assert torch.count_nonzero(rotation[:, 0]) == 0

    def test_ground_truth_rerenders_the_image_inside_the_mask(self, decoder, dataset):
        batch = dataset.batch(torch.arange(4))
        image, mask = decoder.render(batch.codes)
        inside = batch.masks.expand_as(batch.images) > 0.5
        assert torch.equal(mask, batch.masks)
        assert_close(batch.images[inside], image.clamp(0, 1)[inside])
        assert float(batch.masks.mean()) > 0.2, "faces should cover a good part of the image"

    def test_ground_truth_geometry_and_landmarks(self, decoder, dataset):
        batch = dataset.batch(torch.arange(3))
        model = decoder.model
        vertices = model.vertices(batch.codes[:, CODE_SLICES["alpha"]], batch.codes[:, CODE_SLICES["delta"]])
        assert_close(batch.vertices, vertices)
        assert_close(batch.landmarks, decoder.form(batch.codes).uv[:, model.landmark_indices])

    def test_backgrounds_appear_outside_the_mask(self, dataset):
        batch = dataset.batch(torch.arange(4))
        background = dataset.background_images(torch.arange(4))
        outside = batch.masks.expand_as(batch.images) < 0.5
        assert_close(batch.images[outside], background[outside])
        assert float(background.std()) > 0.01

    def test_without_backgrounds_outside_is_black(self, decoder):
        batch = SyntheticFaces(decoder, size=2, seed=0, backgrounds=None).batch(torch.arange(2))
        assert torch.count_nonzero(batch.images * (1 - batch.masks)) == 0

    def test_changing_backgrounds_keeps_codes(self, decoder, dataset):
        plain = SyntheticFaces(decoder, size=12, seed=5, backgrounds=BackgroundConfig(photo=0.0, texture=0.0))
        assert torch.equal(plain.codes(torch.arange(5)), dataset.codes(torch.arange(5)))

    @pytest.mark.parametrize("bad", [torch.tensor([12]), torch.tensor([-1]), torch.tensor([[0]]), torch.tensor([0.5])])
    def test_bad_indices_rejected(self, dataset, bad):
        with pytest.raises(InputError, match="indices"):
            dataset.batch(bad)

    def test_invalid_size_rejected(self, decoder):
        with pytest.raises(InputError, match="size"):
            SyntheticFaces(decoder, size=0)

    @pytest.mark.cuda
    def test_renders_on_the_decoder_device(self, tiny_model, dataset):
        gpu = MoFADecoder(tiny_model.to("cuda", torch.float32), Camera(48))
        batch = SyntheticFaces(gpu, size=12, seed=5).batch(torch.arange(4))
        assert batch.images.device.type == "cuda" and batch.vertices.device.type == "cuda"
        cpu = dataset.batch(torch.arange(4))
        assert torch.equal(batch.codes.cpu(), cpu.codes)
        assert_close(batch.vertices.cpu(), cpu.vertices, rtol=1e-4, atol=1e-3)
        agree = (batch.masks.cpu() == cpu.masks).float().mean()
        assert agree > 0.99


class TestShards:
    def test_manifest_describes_the_dataset(self, written, dataset):
        manifest = json.loads((written / "manifest.json").read_text())
        assert manifest["complete"] and manifest["size"] == 12 and manifest["seed"] == 5
        assert manifest["image_size"] == [48, 48] and manifest["format_version"] == 1
        assert manifest["model"]["num_vertices"] == dataset.decoder.model.num_vertices
        assert [s["count"] for s in manifest["shards"]] == [5, 5, 2]
        assert sorted(p.name for p in written.glob("shard_*.pt")) == ["shard_00000.pt", "shard_00001.pt",
                                                                      "shard_00002.pt"]
        assert manifest["prior"] == CodePrior().__dict__

    def test_round_trip_equals_on_the_fly(self, written, dataset):
        stored = ShardedFaces(written)
        assert len(stored) == 12 and stored.image_size == (48, 48)
        indices = torch.tensor([11, 0, 6, 4, 5])
        read, fresh = stored.batch(indices), dataset.batch(indices)
        assert torch.equal(read.indices, indices)
        assert torch.equal(read.codes, fresh.codes)
        assert_close(read.vertices, fresh.vertices)
        assert_close(read.landmarks, fresh.landmarks)
        assert_close(read.images, fresh.images, rtol=0, atol=0.5 / 255 + IMAGE_ATOL)
        assert_close(read.masks, fresh.masks, rtol=0, atol=0.5 / 255)
        assert read.images.dtype == torch.float32

    def test_shard_cache_is_bounded(self, written):
        stored = ShardedFaces(written, cache_shards=1)
        stored.batch(torch.arange(12))
        assert len(stored._cache) == 1

    def test_vertices_recomputed_when_not_stored(self, decoder, tmp_path):
        dataset = SyntheticFaces(decoder, size=2, seed=5)
        out = write_synthetic_dataset(dataset, tmp_path, shard_size=6, progress=False, store_vertices=False)
        assert ShardedFaces(out).batch(torch.arange(2)).vertices is None
        read = ShardedFaces(out, model=dataset.decoder.model).batch(torch.arange(2))
        assert_close(read.vertices, dataset.batch(torch.arange(2)).vertices)

    def test_complete_dataset_is_not_rewritten(self, dataset, copy):
        before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
        assert write_synthetic_dataset(dataset, copy, shard_size=5, progress=False) == copy
        assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before

    def test_interrupted_write_resumes(self, dataset, written, copy):
        out = copy
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["complete"] = False
        (out / "manifest.json").write_text(json.dumps(manifest))
        (out / "shard_00001.pt").unlink()
        kept = (out / "shard_00000.pt").stat().st_mtime_ns
        write_synthetic_dataset(dataset, out, shard_size=5, progress=False)
        assert (out / "shard_00000.pt").stat().st_mtime_ns == kept
        assert torch.equal(ShardedFaces(out).batch(torch.arange(12)).images,
                           ShardedFaces(written).batch(torch.arange(12)).images)

    def test_incomplete_dataset_rejected(self, copy):
        out = copy
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["complete"] = False
        (out / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(DatasetError, match="incomplete"):
            ShardedFaces(out)

    def test_other_dataset_in_folder_rejected(self, decoder, written):
        with pytest.raises(DatasetError, match="different dataset"):
            write_synthetic_dataset(SyntheticFaces(decoder, size=3, seed=9), written, progress=False)

    def test_missing_folder_named(self, tmp_path):
        with pytest.raises(DatasetError, match="nowhere"):
            ShardedFaces(tmp_path / "nowhere")

    def test_missing_manifest_named(self, tmp_path):
        with pytest.raises(DatasetError, match="manifest.json"):
            ShardedFaces(tmp_path)

    def test_garbled_manifest_rejected(self, tmp_path):
        (tmp_path / "manifest.json").write_text("{not json")
        with pytest.raises(DatasetError, match="manifest.json"):
            ShardedFaces(tmp_path)

    def test_corrupt_shard_named(self, copy):
        (copy / "shard_00001.pt").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
        stored = ShardedFaces(copy)
        stored.batch(torch.arange(5))
        with pytest.raises(DatasetError, match="shard_00001.pt"):
            stored.batch(torch.tensor([7]))

    def test_truncated_shard_named(self, copy):
        data = (copy / "shard_00002.pt").read_bytes()
        (copy / "shard_00002.pt").write_bytes(data[: len(data) // 2])
        with pytest.raises(DatasetError, match="shard_00002.pt"):
            ShardedFaces(copy).batch(torch.tensor([11]))

    def test_missing_shard_named(self, copy):
        (copy / "shard_00000.pt").unlink()
        with pytest.raises(DatasetError, match="shard_00000.pt"):
            ShardedFaces(copy).batch(torch.tensor([0]))

    def test_shard_with_wrong_content_named(self, copy):
        torch.save({"images": torch.zeros(1)}, copy / "shard_00000.pt")
        with pytest.raises(DatasetError, match="shard_00000.pt"):
            ShardedFaces(copy).batch(torch.tensor([0]))


def test_stored_fields_are_uint8_images_int64_indices_float32_rest_and_none_where_absent():
    batch = FaceBatch(images=torch.tensor([0.0, 0.5, 1.2]).view(1, 3, 1, 1), indices=torch.tensor([7]),
                      codes=torch.ones(1, 257, dtype=torch.float64), masks=None)
    out = stored_fields(batch, ("images", "masks", "codes", "indices", "landmarks"))
    assert out["images"].dtype == torch.uint8 and out["images"].flatten().tolist() == [0, 128, 255]
    assert out["codes"].dtype == torch.float32 and out["indices"].tolist() == [7]
    assert out["masks"] is None and out["landmarks"] is None
