"""The counter-based generator (Philox4x32-10 in torch) and what ``data.generator: counter`` draws with it."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch.testing import assert_close

from helpers import tiny_train_config
from mofa_bench import Camera, MoFADecoder
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.config import load_config
from mofa_bench.data import BackgroundConfig, SyntheticFaces
from mofa_bench.data.backgrounds import available_photos, sample_backgrounds
from mofa_bench.data.counter_rng import (CounterStream, counter_normal, counter_uniform, counter_words,
                                         philox4x32)
from mofa_bench.data.device_backgrounds import PARAMETER_WORDS, counter_backgrounds
from mofa_bench.data.out_of_span import OutOfSpanConfig, OutOfSpanFaces
from mofa_bench.data.splits import synthetic_split
from mofa_bench.data.synthetic import BACKGROUND_STREAM, CODE_STREAM
from mofa_bench.errors import ConfigError, InputError
from mofa_bench.sampling import COUNTER_CODE_WORDS, CodePrior, sample_codes, sample_codes_counter
from mofa_bench.training import Trainer

M32 = 0xFFFFFFFF
KINDS = ("noise", "gradient", "texture", "photo")


# ---------------------------------------------------------------------------- a reference in plain Python
def reference_philox(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """Philox4x32-10 on Python ints (Salmon et al. 2011), written from the paper's round function."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


def reference_word(seed: int, index: int, stream: int, draw: int) -> int:
    """Word ``draw`` of ``(seed, index, stream)`` as the module docstring defines it."""
    seed &= (1 << 64) - 1
    block = reference_philox((draw // 4, stream, index & M32, index >> 32), (seed & M32, seed >> 32))
    return block[draw % 4]


#: Random123's published known-answer vectors for Philox4x32-10 (counter, key, output).
RANDOM123_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32,) * 4, (M32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", RANDOM123_KAT)
def test_the_reference_and_the_torch_block_give_random123s_known_answers(counter, key, expected):
    assert reference_philox(counter, key) == expected
    out = philox4x32([torch.tensor([c], dtype=torch.int64) for c in counter], key)
    assert tuple(int(w) for w in out) == expected


@pytest.mark.parametrize("seed, index, stream", [
    (0, 0, 0), (1234, 7, 1), (5, 2**33 + 7, 2), (2**40 + 3, 123_456_789, 0), (2**64 - 1, 2**62, M32), (-1, 3, 1),
])
def test_words_are_the_references_at_known_positions(seed, index, stream):
    draws = [0, 1, 2, 3, 4, 5, 4 * 1000 + 2, 2**20 + 1]
    expected = torch.tensor([[reference_word(seed, index, stream, d) for d in draws]], dtype=torch.int64)
    got = torch.cat([counter_words(seed, [index], stream, d, 1) for d in draws], dim=1)
    assert torch.equal(got, expected)
    assert torch.equal(counter_words(seed, [index], stream, 0, 6), expected[:, :6])


def test_uniforms_and_normals_follow_their_formulas():
    seed, index, stream = 99, 2**35 + 11, 1
    words = [reference_word(seed, index, stream, d) for d in range(6)]
    uniform = torch.tensor([[((w >> 8) + 0.5) / 2**24 for w in words]], dtype=torch.float64)
    assert torch.equal(counter_uniform(seed, [index], stream, 0, 6, dtype=torch.float64), uniform)
    assert torch.equal(counter_uniform(seed, [index], stream, 0, 6), uniform.float())  # 24 bits: exact
    normals = []
    for a, b in zip(words[0::2], words[1::2]):
        radius = math.sqrt(-2.0 * math.log((a + 0.5) / 2**32))
        angle = 2.0 * math.pi * (b + 0.5) / 2**32
        normals += [radius * math.cos(angle), radius * math.sin(angle)]
    got = counter_normal(seed, [index], stream, 0, 5, dtype=torch.float64)
    assert_close(got, torch.tensor([normals[:5]], dtype=torch.float64), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- determinism
def test_a_sample_depends_only_on_its_index_not_on_the_batch():
    alone = counter_words(3, [7], 1, 10, 9)
    mixed = counter_words(3, [2, 7, 0, 7], 1, 10, 9)
    assert torch.equal(mixed[1], alone[0]) and torch.equal(mixed[3], alone[0])
    assert not torch.equal(mixed[0], mixed[1])
    assert not torch.equal(counter_words(4, [7], 1, 10, 9), alone)  # another seed
    assert not torch.equal(counter_words(3, [7], 2, 10, 9), alone)  # another stream


def test_a_stream_gives_the_same_values_in_one_call_or_many_prefetched_or_not():
    index = torch.tensor([5, 1, 9])
    whole = counter_uniform(0, index, 3, 0, 12)
    draws = CounterStream(0, index, 3)
    parts = [draws.uniform(2), draws.uniform(4, rows=torch.tensor([2, 0])), draws.uniform(6)]
    assert_close(parts[0], whole[:, :2], rtol=0, atol=0)
    assert_close(parts[1], whole[[2, 0], 2:6], rtol=0, atol=0)
    assert_close(parts[2], whole[:, 6:], rtol=0, atol=0)
    fetched = CounterStream(0, index, 3)
    fetched.prefetch(5)
    assert_close(torch.cat([fetched.uniform(3), fetched.uniform(9)], 1), whole, rtol=0, atol=0)
    far = draws.fork(2**26).normal(3, 2)
    assert_close(far.view(3, -1), counter_normal(0, index, 3, 2**26, 6), rtol=0, atol=0)


def test_integers_stay_in_range_and_take_every_value():
    draws = CounterStream(1, torch.arange(2000), 0)
    small = draws.integers(1, 9)
    assert int(small.min()) == 1 and int(small.max()) == 8 and len(torch.unique(small)) == 8
    bounds = torch.arange(2000) % 5 + 1
    per_sample = draws.integers(0, bounds)
    assert bool((per_sample >= 0).all()) and bool((per_sample < bounds).all())


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="index"):
        counter_words(0, [-1], 0, 0, 1)
    with pytest.raises(InputError, match="stream"):
        counter_words(0, [0], 2**32, 0, 1)
    with pytest.raises(InputError, match="index"):
        CounterStream(0, torch.zeros(2, 2, dtype=torch.int64), 0)


# ---------------------------------------------------------------------------- distributions
def test_uniform_moments_and_ks():
    u = counter_uniform(2024, torch.arange(25_000), 0, 0, 4, dtype=torch.float64).flatten()  # 1e5 draws
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 4 * math.sqrt(1 / 12 / u.numel())
    assert abs(float(u.var()) - 1 / 12) < 0.002
    assert stats.kstest(u.numpy(), "uniform").pvalue > 0.01


def test_normal_moments_and_ks():
    z = counter_normal(2024, torch.arange(25_000), 1, 0, 4, dtype=torch.float64).flatten()  # 1e5 draws
    assert abs(float(z.mean())) < 4 / math.sqrt(z.numel())
    assert abs(float(z.std()) - 1.0) < 0.01
    assert abs(float(stats.skew(z.numpy()))) < 0.03 and abs(float(stats.kurtosis(z.numpy()))) < 0.06
    assert stats.kstest(z.numpy(), "norm").pvalue > 0.01
    pairs = z.view(-1, 2)  # Box–Muller's two values of a pair are independent
    assert abs(float(torch.corrcoef(pairs.T)[0, 1])) < 0.02


def test_codes_follow_the_prior_as_the_default_generator_draws_it():
    n = 6000
    prior = CodePrior()
    counter = sample_codes_counter(CounterStream(7, torch.arange(n), CODE_STREAM), prior)
    default = sample_codes(n, prior, torch.Generator().manual_seed(7))
    assert counter.shape == default.shape == (n, 257) and counter.dtype == torch.float32
    sd = default.std(0)
    # Means within 5 standard errors of the difference; standard deviations within 8 %.
    assert bool(((counter.mean(0) - default.mean(0)).abs() <= 5 * sd * math.sqrt(2 / n) + 1e-6).all())
    assert_close(counter.std(0), sd, rtol=0.08, atol=1e-6)
    rotation = counter[:, CODE_SLICES["rotation"]].abs().amax(0)
    limits = torch.tensor([prior.pitch_deg, prior.yaw_deg, prior.roll_deg]) * math.pi / 180
    assert bool((rotation <= limits).all()) and bool((rotation > 0.98 * limits).all())


def test_counter_codes_scale_with_the_prior_and_take_a_fixed_number_of_words():
    draws = CounterStream(3, torch.arange(4), CODE_STREAM)
    base = sample_codes_counter(draws, CodePrior())
    assert draws.position == COUNTER_CODE_WORDS
    wide = sample_codes_counter(CounterStream(3, torch.arange(4), CODE_STREAM), CodePrior(identity_std=2.0))
    assert_close(wide[:, CODE_SLICES["alpha"]], 2.0 * base[:, CODE_SLICES["alpha"]], rtol=0, atol=0)
    assert_close(wide[:, CODE_SLICES["beta"]], base[:, CODE_SLICES["beta"]], rtol=0, atol=0)


def _default_codes_reference(n: int, prior: CodePrior, generator: torch.Generator) -> torch.Tensor:
    """sample_codes' draws, written out in their order (what every run with the CPU generator used)."""
    normal = lambda *shape: torch.randn(*shape, generator=generator)  # noqa: E731
    code = torch.zeros(n, 257)
    code[:, CODE_SLICES["alpha"]] = prior.identity_std * normal(n, 80)
    code[:, CODE_SLICES["delta"]] = prior.expression_std * normal(n, 64)
    code[:, CODE_SLICES["beta"]] = prior.reflectance_std * normal(n, 80)
    limits = torch.tensor([prior.pitch_deg, prior.yaw_deg, prior.roll_deg]) * math.pi / 180.0
    code[:, CODE_SLICES["rotation"]] = (torch.rand(n, 3, generator=generator) * 2.0 - 1.0) * limits
    std = torch.tensor([prior.translation_std_mm, prior.translation_std_mm, prior.depth_std_mm])
    code[:, CODE_SLICES["translation"]] = normal(n, 3) * std
    gamma = torch.zeros(n, 9, 3)
    white = prior.light_std * normal(n, 8, 1)
    gamma[:, 1:, :] = white + prior.colored_light_std * normal(n, 8, 3)
    gamma[:, 0, :] = prior.ambient_std * normal(n, 1) + prior.colored_light_std * normal(n, 3)
    code[:, CODE_SLICES["gamma"]] = gamma.reshape(n, 27)
    return code


@pytest.mark.parametrize("seed, prior", [(0, CodePrior()), (17, CodePrior(identity_std=0.5, yaw_deg=60.0))])
def test_the_default_generator_keeps_its_numbers(seed, prior):
    """sample_codes, now sharing its assembly with the counter variant, draws what it drew before."""
    got = sample_codes(3, prior, torch.Generator().manual_seed(seed))
    assert torch.equal(got, _default_codes_reference(3, prior, torch.Generator().manual_seed(seed)))


# ---------------------------------------------------------------------------- backgrounds
def _only(kind: str) -> BackgroundConfig:
    return BackgroundConfig(**{k: float(k == kind) for k in KINDS})


@pytest.mark.parametrize("kind", KINDS)
def test_each_background_kind_is_drawn_batched_and_depends_only_on_the_index(kind):
    if kind == "photo" and not available_photos():
        pytest.skip("scikit-image's photos are not available here")
    index = torch.arange(6) + 40
    batch = counter_backgrounds(CounterStream(1, index, BACKGROUND_STREAM), (24, 32), _only(kind))
    assert batch.shape == (6, 3, 24, 32) and batch.dtype == torch.float32
    assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0
    assert float(batch.std(dim=(1, 2, 3)).min()) > 0.0  # none is blank
    pick = torch.tensor([4, 1, 4])
    again = counter_backgrounds(CounterStream(1, index[pick], BACKGROUND_STREAM), (24, 32), _only(kind))
    assert_close(again, batch[pick], rtol=0, atol=1e-6)


def test_backgrounds_of_mixed_kinds_equal_those_drawn_alone():
    """The stream's layout is fixed: a sample's background is the same whatever its batch's kinds."""
    config = BackgroundConfig(photo=0.0)
    index = torch.arange(24)
    draws = CounterStream(2, index, BACKGROUND_STREAM)
    batch = counter_backgrounds(draws, 16, config)
    assert draws.position == PARAMETER_WORDS
    for i in (0, 5, 23):
        alone = counter_backgrounds(CounterStream(2, index[i:i + 1], BACKGROUND_STREAM), 16, config)
        assert_close(alone[0], batch[i], rtol=0, atol=1e-6)
    assert torch.equal(counter_backgrounds(CounterStream(2, index, 1), 16, BackgroundConfig.disabled()),
                       torch.zeros(24, 3, 16, 16))


@pytest.mark.parametrize("kind", ("noise", "gradient", "texture"))
def test_background_kinds_look_like_the_default_generators(kind):
    n, size = 48, 32
    counter = counter_backgrounds(CounterStream(5, torch.arange(n), BACKGROUND_STREAM), size, _only(kind))
    default = sample_backgrounds(n, size, torch.Generator().manual_seed(5), _only(kind))
    for stat in (lambda x: x.mean(dim=(1, 2, 3)), lambda x: x.std(dim=(2, 3)).mean(1)):
        a, b = stat(counter), stat(default)
        assert abs(float(a.mean() - b.mean())) < 0.1, kind


# ---------------------------------------------------------------------------- datasets
@pytest.fixture(scope="module")
def decoder(tiny_model):
    return MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(32))


def test_synthetic_faces_draw_with_the_counter_generator(decoder):
    data = SyntheticFaces(decoder, size=10, seed=5, backgrounds=BackgroundConfig(photo=0.0), generator="counter")
    batch = data.batch(torch.tensor([0, 3, 9]))
    again = data.batch(torch.tensor([9, 3]))
    assert torch.equal(again.codes, batch.codes[[2, 1]])
    assert_close(again.images, batch.images[[2, 1]], rtol=0, atol=1e-5)
    # Sample i of a set starting at s is global index s + i.
    later = SyntheticFaces(decoder, size=5, seed=5, backgrounds=BackgroundConfig(photo=0.0), start=5,
                           generator="counter")
    assert torch.equal(later.codes(torch.tensor([4])), data.codes(torch.tensor([9])))
    assert_close(later.background_images(torch.tensor([4])), data.background_images(torch.tensor([9])),
                 rtol=0, atol=0)
    # Another generator: other numbers, the same contract; only the counter one says so in describe().
    cpu = SyntheticFaces(decoder, size=10, seed=5)
    assert not torch.allclose(cpu.codes(torch.tensor([0])), data.codes(torch.tensor([0])))
    assert data.describe()["generator"] == "counter" and "generator" not in cpu.describe()
    with pytest.raises(InputError, match="generator"):
        SyntheticFaces(decoder, size=10, generator="gpu")


def test_out_of_span_detail_follows_the_generator(decoder):
    detail = OutOfSpanConfig(shape_modes=3, reflectance_modes=2)
    data = OutOfSpanFaces(decoder, size=6, seed=1, detail=detail, generator="counter")
    z = data.detail_coefficients(torch.tensor([1, 4]))
    assert z.shape == (2, 5)
    assert_close(z[1:], data.detail_coefficients(torch.tensor([4])), rtol=0, atol=0)


def test_only_the_training_split_takes_the_configs_generator(tmp_path, tiny_model_path, decoder):
    config = tiny_train_config(tmp_path, tiny_model_path, "data.generator=counter")
    assert synthetic_split(decoder, config.data, "train").generator == "counter"
    for split in ("val", "test", "target"):
        assert synthetic_split(decoder, config.data, split).generator == "cpu"
    assert load_config(None, []).data.generator == "cpu"
    with pytest.raises(ConfigError, match="data.generator"):
        tiny_train_config(tmp_path, tiny_model_path, "data.generator=philox")


def test_a_counter_run_resumes_bit_for_bit(tmp_path, tiny_model_path):
    counter = ("data.generator=counter", "data.backgrounds={photo: 0.0}", "val_every=100", "sample_every=100")
    full = Trainer(tiny_train_config(tmp_path, tiny_model_path, *counter, "optim.iterations=3", name="full"))
    full.fit()
    part = Trainer(tiny_train_config(tmp_path, tiny_model_path, *counter, "optim.iterations=1", name="part"))
    part.fit()
    resumed = Trainer(tiny_train_config(tmp_path, tiny_model_path, *counter, "optim.iterations=3", name="part"))
    resumed.fit(resume=True)
    assert resumed.step == 3
    a, b = full.method.state_dict(), resumed.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- devices
@pytest.mark.cuda
def test_cuda_draws_the_cpus_bits():
    index = torch.arange(0, 2**40, 2**40 // 5000)
    for seed, stream in ((0, 0), (2**63 + 5, 7)):
        cpu = counter_words(seed, index, stream, 3, 21)
        gpu = counter_words(seed, index.cuda(), stream, 3, 21)
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
        assert torch.equal(counter_uniform(seed, index.cuda(), stream, 0, 9).cpu(), counter_uniform(seed, index, stream, 0, 9))
        # Normals go through each device's float64 log/cos/sin: equal to float64 rounding.
        assert_close(counter_normal(seed, index.cuda(), stream, 0, 9, dtype=torch.float64).cpu(),
                     counter_normal(seed, index, stream, 0, 9, dtype=torch.float64), rtol=1e-13, atol=1e-13)
    codes = sample_codes_counter(CounterStream(3, index[:64].cuda(), CODE_STREAM))
    assert_close(codes.cpu(), sample_codes_counter(CounterStream(3, index[:64], CODE_STREAM)), rtol=1e-6, atol=1e-6)
    config = BackgroundConfig(photo=float(bool(available_photos())))
    gpu = counter_backgrounds(CounterStream(3, index[:32].cuda(), BACKGROUND_STREAM), 48, config)
    cpu = counter_backgrounds(CounterStream(3, index[:32], BACKGROUND_STREAM), 48, config)
    assert gpu.device.type == "cuda"
    assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-4)
