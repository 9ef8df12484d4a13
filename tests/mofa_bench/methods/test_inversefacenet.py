"""InverseFaceNet: the model-space loss against a brute-force decode, breeding, resume, options, CLI."""

import shutil

import pytest
import torch

from helpers import assert_close, tiny_train_config
from mofa_bench.camera import Camera
from mofa_bench.cli import main
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.decoder import MoFADecoder
from mofa_bench.errors import ConfigError
from mofa_bench.methods import build_method, method_names
from mofa_bench.methods.breeding import BredFaces, BreedingSchedule, fit_code_distribution
from mofa_bench.methods.code_regression import prior_scale
from mofa_bench.methods.inversefacenet import InverseFaceNet
from mofa_bench.methods.model_space import MODEL_SPACE_TERMS, ModelSpaceLoss, model_space_scale, model_space_terms
from mofa_bench.sampling import CodePrior, sample_codes
from mofa_bench.training.trainer import Trainer


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return MoFADecoder(tiny_model, Camera(64))


def _brute_force_terms(decoder, predicted, true):
    """Each term by decoding one code at a time and summing over vertices one by one."""
    out = {name: [] for name in MODEL_SPACE_TERMS}
    for p, t in zip(predicted, true):
        a, b = decoder.form(p[None]), decoder.form(t[None])
        fields = {"geometry": (a.verts_cam, b.verts_cam), "reflectance": (a.reflectance, b.reflectance),
                  "screen": (a.uv, b.uv), "shading": (a.colors, b.colors)}
        for name, (x, y) in fields.items():
            n = x.shape[1]
            out[name].append(sum(float(((x[0, i] - y[0, i]) ** 2).sum()) for i in range(n)) / n)
    return {name: torch.tensor(values, dtype=torch.float64) for name, values in out.items()}


def test_model_space_terms_match_a_brute_force_decode(decoder):
    generator = torch.Generator().manual_seed(1)
    true = sample_codes(3, CodePrior(), generator, dtype=torch.float64)
    predicted = sample_codes(3, CodePrior(), generator, dtype=torch.float64)
    terms = model_space_terms(decoder.form(predicted), decoder.form(true))
    expected = _brute_force_terms(decoder, predicted, true)
    for name in MODEL_SPACE_TERMS:
        assert_close(terms[name], expected[name], rtol=1e-10, atol=1e-12, msg=name)

    scale = model_space_scale(decoder, CodePrior(), count=4, seed=5)
    prior_codes = sample_codes(4, CodePrior(), torch.Generator().manual_seed(5)).double()
    brute_scale = _brute_force_terms(decoder, torch.zeros_like(prior_codes), prior_codes)
    assert_close(scale.double(), torch.stack([brute_scale[n].mean() for n in MODEL_SPACE_TERMS]), rtol=1e-5, atol=0)

    weights = {"geometry": 2.0, "reflectance": 1.0, "screen": 0.0, "shading": 1.0}
    loss = ModelSpaceLoss(decoder, scale, weights)(predicted, true)
    scaled = {n: expected[n].mean() / scale[i].double() for i, n in enumerate(MODEL_SPACE_TERMS)}
    for name in MODEL_SPACE_TERMS:
        assert_close(loss[name], scaled[name], rtol=1e-5, atol=0, msg=name)
    assert_close(loss["total"], (2 * scaled["geometry"] + scaled["reflectance"] + scaled["shading"]) / 4, rtol=1e-5,
                 atol=0)


def test_model_space_loss_measures_what_the_parameters_do(decoder):
    scale = model_space_scale(decoder, CodePrior(), count=8)
    loss = ModelSpaceLoss(decoder, scale)
    true = sample_codes(2, CodePrior(), torch.Generator().manual_seed(2), dtype=torch.float64)
    assert float(loss(true, true)["total"]) == 0.0
    # A light change leaves geometry and albedo alone; a reflectance change moves no vertex.
    light = true.clone()
    light[:, CODE_SLICES["gamma"]] += 0.2
    terms = loss(light, true)
    assert float(terms["geometry"]) == 0.0 and float(terms["reflectance"]) == 0.0 and float(terms["shading"]) > 0
    albedo = true.clone()
    albedo[:, CODE_SLICES["beta"]] += 1.0
    terms = loss(albedo, true)
    assert float(terms["geometry"]) == 0.0 and float(terms["screen"]) == 0.0 and float(terms["reflectance"]) > 0
    # The mean face against typical faces scores about 1 per term.
    typical = sample_codes(64, CodePrior(), torch.Generator().manual_seed(0), dtype=torch.float64)
    terms = loss(torch.zeros_like(typical), typical)
    for name in MODEL_SPACE_TERMS:
        assert 0.5 < float(terms[name]) < 2.0, name
    predicted = torch.zeros_like(true, requires_grad=True)
    loss(predicted, true)["total"].backward()
    assert float(predicted.grad.abs().sum()) > 0


def test_fitted_distribution_is_shrunk_towards_the_prior():
    scale = prior_scale(CodePrior())
    codes = sample_codes(300, CodePrior(yaw_deg=70.0), torch.Generator().manual_seed(0)) + 0.5
    mean, factor = fit_code_distribution(codes, scale, 1.0)
    assert float(mean.abs().max()) == 0.0
    assert_close(factor @ factor.T, torch.diag(scale.double() ** 2), rtol=1e-10, atol=1e-12)
    mean, factor = fit_code_distribution(codes, scale, 0.25)
    assert_close(mean, 0.75 * codes.double().mean(0), rtol=1e-10, atol=1e-12)
    covariance = torch.cov(codes.double().T)
    assert_close(factor @ factor.T, 0.75 * covariance + 0.25 * torch.diag(scale.double() ** 2), rtol=1e-8, atol=1e-10)
    # Wider yaw in the codes gives a wider yaw in the fit.
    yaw = CODE_SLICES["rotation"].start + 1
    assert float((factor @ factor.T)[yaw, yaw].sqrt()) > float(scale[yaw]) * 1.2


def test_schedule_and_bred_corpus_are_pure_functions(decoder):
    schedule = BreedingSchedule(2)
    assert [schedule.round_at(s, 9) for s in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [schedule.start_of(r, 9) for r in range(3)] == [0, 3, 6]
    assert BreedingSchedule(0).round_at(8, 9) == 0
    mean = torch.zeros(257, dtype=torch.float64)
    mean[CODE_SLICES["rotation"].start + 1] = 0.4
    factor = torch.diag(prior_scale(CodePrior()).double()) * 0.1
    corpus = BredFaces(decoder, 1 << 40, 7, mean, factor)
    codes = corpus.codes(torch.tensor([5, 1, 9]))
    assert torch.equal(codes[1], corpus.codes(torch.tensor([1]))[0])
    assert torch.equal(codes, BredFaces(decoder, 1 << 40, 7, mean, factor).codes(torch.tensor([5, 1, 9])))
    assert abs(float(codes[:, CODE_SLICES["rotation"].start + 1].mean()) - 0.4) < 0.1
    assert corpus.batch(torch.tensor([2, 3])).images.shape == (2, 3, 64, 64)


def test_bred_corpus_with_the_counter_generator(decoder):
    """``data.generator: counter``: the bred codes are batched draws, a pure function of (seed, index)."""
    mean = torch.zeros(257, dtype=torch.float64)
    mean[CODE_SLICES["rotation"].start + 1] = 0.4
    factor = torch.diag(prior_scale(CodePrior()).double()) * 0.1
    corpus = BredFaces(decoder, 1 << 40, 7, mean, factor, generator="counter")
    codes = corpus.codes(torch.tensor([5, 1, 9]))
    assert torch.equal(codes[1], corpus.codes(torch.tensor([1]))[0])
    assert not torch.equal(codes, BredFaces(decoder, 1 << 40, 7, mean, factor).codes(torch.tensor([5, 1, 9])))
    many = corpus.codes(torch.arange(2000))
    yaw = CODE_SLICES["rotation"].start + 1
    assert abs(float(many[:, yaw].mean()) - 0.4) < 0.01
    assert float(many[:, yaw].std()) == pytest.approx(float(factor[yaw, yaw]), rel=0.1)
    assert corpus.batch(torch.tensor([2, 3])).images.shape == (2, 3, 64, 64)


def test_breeding_draws_its_corpus_with_the_datas_generator(tmp_path, tiny_model_path):
    config = _config(tmp_path, tiny_model_path, "data.generator=counter")
    method = build_method(config, MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build()))
    assert method.breeding.generator == "counter"
    method.breeding_round.fill_(1)
    assert method.corpus().generator == "counter"


def _config(tmp_path, model_path, *overrides, name="run"):
    return tiny_train_config(tmp_path, model_path, "method=inversefacenet", "optim.iterations=6",
                             "method_options={rounds: 2, images_per_round: 4}", "data.target_prior={yaw_deg: 70}",
                             "checkpoint_every=1", "keep_every=1", *overrides, name=name)


def test_breeding_is_deterministic_and_resumes_mid_rounds(tmp_path, tiny_model_path):
    trainer = Trainer(_config(tmp_path, tiny_model_path, name="a"), validator=None)
    trainer.fit()
    method = trainer.method
    assert isinstance(method, InverseFaceNet) and method.round == 2
    rows = (trainer.run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[:7] == ["step", "loss", "geometry", "reflectance", "screen", "shading", "parameter"]
    assert [float(r.split(",")[7]) for r in rows[1:]] == [0, 0, 1, 1, 2, 2]  # the round column

    # Same seed: the same first breeding from the same weights.
    again = Trainer(_config(tmp_path, tiny_model_path, name="b"), validator=None)
    state = torch.load(trainer.checkpoint_dir / "step_0000002.pt", weights_only=False)["method"]
    again.method.load_state_dict(state)
    again.method.set_step(2, 6)
    first = torch.load(trainer.checkpoint_dir / "step_0000003.pt", weights_only=False)["method"]
    assert int(first["breeding_round"]) == 1
    assert torch.equal(again.method.bred_mean, first["bred_mean"])
    assert torch.equal(again.method.bred_factor, first["bred_factor"])

    # Resumed from step 3 (round 1, bred; round 2 not yet), it ends where the straight run did.
    resumed_dir = tmp_path / "c"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(trainer.checkpoint_dir / "step_0000003.pt", resumed_dir / "checkpoints" / "last.pt")
    resumed = Trainer(_config(tmp_path, tiny_model_path, name="c"), validator=None)
    resumed.fit(resume=True)
    assert resumed.method.round == 2
    final, straight = resumed.method.state_dict(), method.state_dict()
    for key in straight:
        assert torch.equal(final[key], straight[key]), key


def test_bad_method_options_are_named(tmp_path, tiny_model_path):
    assert "inversefacenet" in method_names() and "multilevel" in method_names()
    cases = [
        ("method_options={ronuds: 2}", "method_options.ronuds: unknown option of the inversefacenet method"),
        ("method_options={rounds: -1}", "method_options.rounds: expected an integer >= 0"),
        ("method_options={images_per_round: 0}", "method_options.images_per_round: expected an integer > 0"),
        ("method_options={prior_weight: 0}", r"method_options.prior_weight: expected a number in \(0, 1\]"),
        ("method_options={weights: {pose: 1}}", "method_options.weights.pose: unknown model-space term"),
        ("method_options={weights: {geometry: 0, reflectance: 0, screen: 0, shading: 0}}",
         "at least one model-space term"),
        (f"method_options={{rounds: 1, target: {tmp_path / 'nowhere'}}}", "method_options.target: expected"),
        ("method_options={rounds: 9}", "9 rounds need at least 10 optim.iterations"),
    ]
    for override, message in cases:
        config = tiny_train_config(tmp_path, tiny_model_path, "method=inversefacenet", override)
        decoder = MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build())
        with pytest.raises(ConfigError, match=message):
            build_method(config, decoder)
    config = tiny_train_config(tmp_path, tiny_model_path, "method=inversefacenet", "data.kind=images",
                               f"data.path={tmp_path}")
    with pytest.raises(ConfigError, match="data.kind: the inversefacenet method needs true codes"):
        build_method(config, MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build()))


def test_trains_from_the_command_line(tmp_path, tiny_model_path, capsys):
    args = ["train", "--device", "cpu", "--encoder", "resnet18", "--iterations", "2", "--out", str(tmp_path),
            "--name", "ifn", "--set", f"model.source={tiny_model_path}", "--set", "camera.image_size=64",
            "--set", "optim.batch_size=2", "--set", "data.train_size=4", "--set", "data.val_size=2",
            "--set", "progress=false", "--set", "num_val_images=2", "--set", "data.backgrounds={photo: 0.0}",
            "--set", "method=inversefacenet", "--set", "method_options={rounds: 1, images_per_round: 2}"]
    assert main(args) == 0
    assert "finished 2 steps" in capsys.readouterr().out
    header = (tmp_path / "ifn" / "metrics.csv").read_text().splitlines()[0]
    assert "geometry" in header and "round" in header
