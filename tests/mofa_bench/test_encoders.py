"""Tests for the mofa_bench.encoders package: zero-initialised heads, shapes, pretrained loading, lr groups."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.encoders import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    OUTPUT_SCALE,
    VGGFACE_MEAN,
    VGGFACE_STD,
    Z_TRANSLATION_INDEX,
    AlexNetEncoder,
    CodeHead,
    FaceEncoder,
    ResNetEncoder,
    VGG16Encoder,
    build_encoder,
    convert_state_dict,
    encoder_names,
    load_pretrained,
    output_scale_vector,
    parameter_groups,
)
from mofa_bench.errors import CheckpointError, ConfigError, InputError

ALL = ["alexnet", "vgg16", "resnet18", "resnet50"]
#: Source-classifier layer of each torchvision model (1000 ImageNet classes).
TORCHVISION_HEADS = {
    "alexnet": {"classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)},
    "vgg16": {"classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)},
    "resnet18": {"fc.weight": (1000, 512), "fc.bias": (1000,)},
    "resnet50": {"fc.weight": (1000, 2048), "fc.bias": (1000,)},
}


@pytest.fixture(scope="module")
def encoders():
    """Lazily built, shared encoders in eval mode (tests that modify one build their own)."""
    cache: dict[str, FaceEncoder] = {}

    def get(name: str) -> FaceEncoder:
        if name not in cache:
            cache[name] = build_encoder(name).eval()
        return cache[name]

    return get


def torchvision_state_dict(encoder: FaceEncoder, name: str) -> dict[str, torch.Tensor]:
    """The state_dict torchvision would hold for this backbone: our backbone names, no head
    or mofa-bench buffers, plus the source's own 1000-way classifier."""
    sd = {k: v.clone() for k, v in encoder.state_dict().items()
          if not k.startswith("head.") and k not in ("input_mean", "input_std", "output_scale")}
    for key, shape in TORCHVISION_HEADS[name].items():
        sd[key] = torch.randn(shape)
    return sd


def backbone_items(encoder: FaceEncoder):
    return {k: v for k, v in encoder.state_dict().items()
            if not k.startswith("head.") and k not in ("input_mean", "input_std", "output_scale")}


def randomize_head(encoder: FaceEncoder) -> None:
    with torch.no_grad():
        for p in encoder.head.parameters():
            p.normal_(0.0, 0.01)


class TestBuildEncoder:
    @pytest.mark.parametrize("name", ALL)
    def test_zero_head_predicts_zero_code(self, encoders, name):
        encoder = encoders(name)
        code = encoder(torch.rand(2, 3, 96, 96))
        assert code.shape == (2, CODE_DIM)
        assert torch.equal(code, torch.zeros(2, CODE_DIM))
        assert torch.count_nonzero(encoder.head.weight) == 0 and torch.count_nonzero(encoder.head.bias) == 0

    def test_zero_head_predicts_zero_code_in_train_mode(self):
        encoder = build_encoder("alexnet").train()
        assert torch.equal(encoder(torch.rand(2, 3, 128, 128)), torch.zeros(2, CODE_DIM))

    @pytest.mark.parametrize("name,size", [(name, size) for name in ALL for size in [(64, 64), (128, 128), (96, 160)]]
                             + [("alexnet", (240, 240)), ("resnet18", (240, 240))])
    def test_any_input_size_gives_b_by_257(self, encoders, name, size):
        encoder = encoders(name)
        randomize_head(encoder)
        try:
            with torch.no_grad():
                code = encoder(torch.rand(1, 3, *size))
        finally:
            encoder.head.reset_parameters()
        assert code.shape == (1, CODE_DIM)
        assert torch.isfinite(code).all() and code.abs().sum() > 0

    @pytest.mark.parametrize("name,cls,dim", [("alexnet", AlexNetEncoder, 4096), ("vgg16", VGG16Encoder, 4096),
                                              ("resnet18", ResNetEncoder, 512), ("resnet50", ResNetEncoder, 2048)])
    def test_classes_and_feature_sizes(self, encoders, name, cls, dim):
        encoder = encoders(name)
        assert isinstance(encoder, cls) and encoder.arch == name
        assert encoder.feature_dim == dim and encoder.head.weight.shape == (CODE_DIM, dim)
        assert encoder.image_size == 240

    def test_torchvision_parameter_counts(self, encoders):
        # torchvision's counts minus its 1000-way classifier plus our 257-way head.
        expected = {"alexnet": 61_100_840 - 4_097_000 + 4097 * 257,
                    "vgg16": 138_357_544 - 4_097_000 + 4097 * 257,
                    "resnet18": 11_689_512 - 513_000 + 513 * 257,
                    "resnet50": 25_557_032 - 2_049_000 + 2049 * 257}
        for name, count in expected.items():
            assert sum(p.numel() for p in encoders(name).parameters()) == count, name

    def test_unknown_name_lists_known_names(self):
        with pytest.raises(ConfigError, match="alexnet, vgg16, resnet18, resnet50"):
            build_encoder("inception")
        assert encoder_names() == ("alexnet", "vgg16", "resnet18", "resnet50")

    def test_name_is_case_insensitive_and_vggface_is_vgg16(self):
        assert isinstance(build_encoder("ResNet18"), ResNetEncoder)
        assert build_encoder("AlexNet").arch == "alexnet"
        assert VGG16Encoder.arch == "vgg16"

    def test_unknown_option_raises(self):
        with pytest.raises(ConfigError, match="unknown options"):
            build_encoder("resnet18", dropout=0.1)

    def test_options_are_passed(self):
        encoder = build_encoder("alexnet", image_size=128, dropout=0.0, output_scale={"gamma": 0.5})
        assert encoder.image_size == 128 and encoder.classifier[0].p == 0.0
        assert torch.all(encoder.output_scale[CODE_SLICES["gamma"]] == 0.5)

    def test_bad_resnet_depth_raises(self):
        with pytest.raises(ConfigError, match="depth"):
            ResNetEncoder(depth=20)

    def test_too_small_nominal_size_raises(self):
        with pytest.raises(ConfigError, match="image_size"):
            build_encoder("resnet18", image_size=32)

    @pytest.mark.parametrize("bad", [torch.rand(1, 3, 32, 32), torch.rand(1, 1, 96, 96), torch.rand(3, 96, 96),
                                     torch.randint(0, 255, (1, 3, 96, 96))])
    def test_bad_images_raise(self, encoders, bad):
        with pytest.raises(InputError, match="images"):
            encoders("resnet18")(bad)

    def test_runs_on_device(self, device):
        encoder = build_encoder("resnet18").eval().to(device)
        code = encoder(torch.rand(2, 3, 64, 64, device=device))
        assert code.device.type == device.type and torch.count_nonzero(code) == 0

    def test_float64(self):
        encoder = build_encoder("resnet18").eval().double()
        code = encoder(torch.rand(1, 3, 64, 64, dtype=torch.float64))
        assert code.dtype == torch.float64


class TestHeadAndScale:
    def test_head_equals_one_linear_layer_in_code_order(self):
        head = CodeHead(16)
        with torch.no_grad():
            for p in head.parameters():
                p.normal_()
        x = torch.randn(3, 16)
        assert_close(head(x), F.linear(x, head.weight, head.bias))
        assert_close(head(x)[:, Z_TRANSLATION_INDEX], head.z_translation(x)[:, 0])

    def test_convention_z_translation_is_code_index_229(self):
        assert Z_TRANSLATION_INDEX == CODE_SLICES["translation"].start + 2 == 229

    def test_code_is_raw_output_times_scale(self, encoders):
        encoder = encoders("alexnet")
        randomize_head(encoder)
        try:
            images = torch.rand(2, 3, 96, 96)
            with torch.no_grad():
                assert_close(encoder(images), encoder.raw_output(images) * encoder.output_scale)
        finally:
            encoder.head.reset_parameters()

    def test_z_bias_moves_only_z_translation(self):
        encoder = build_encoder("resnet18").eval()
        with torch.no_grad():
            encoder.head.z_translation.bias.fill_(1.0)
        code = encoder(torch.rand(1, 3, 64, 64))
        expected = torch.zeros(1, CODE_DIM)
        expected[0, Z_TRANSLATION_INDEX] = 50.0
        assert torch.equal(code, expected)

    def test_convention_output_scale_table(self):
        scale = output_scale_vector()
        assert scale.shape == (CODE_DIM,)
        for part in ("alpha", "delta", "beta"):
            assert torch.all(scale[CODE_SLICES[part]] == 1.0)
        assert torch.all(scale[CODE_SLICES["rotation"]] == 1.0)
        assert scale[CODE_SLICES["translation"]].tolist() == [10.0, 10.0, 50.0]
        assert_close(scale[CODE_SLICES["gamma"]], torch.full((27,), 0.3))
        assert set(OUTPUT_SCALE) == set(CODE_SLICES)

    def test_output_scale_override_and_errors(self):
        scale = output_scale_vector({"rotation": (0.5, 1.0, 0.25)})
        assert scale[CODE_SLICES["rotation"]].tolist() == [0.5, 1.0, 0.25]
        with pytest.raises(ConfigError, match="unknown code parts"):
            output_scale_vector({"pose": 1.0})
        with pytest.raises(ConfigError, match="translation"):
            output_scale_vector({"translation": (1.0, 2.0)})
        with pytest.raises(ConfigError, match="> 0"):
            output_scale_vector({"alpha": 0.0})

    def test_normalization_uses_imagenet_statistics(self, encoders):
        encoder = encoders("resnet18")
        mean_image = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 8, 8)
        assert_close(encoder.normalize(mean_image), torch.zeros(1, 3, 8, 8))
        one_std = mean_image + torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        assert_close(encoder.normalize(one_std), torch.ones(1, 3, 8, 8))

    def test_custom_normalization(self):
        encoder = build_encoder("resnet18", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        assert_close(encoder.normalize(torch.ones(1, 3, 4, 4)), torch.ones(1, 3, 4, 4))
        with pytest.raises(ConfigError, match="std"):
            encoder.set_normalization((0.5, 0.5, 0.5), (0.5, 0.0, 0.5))


class TestLoadPretrained:
    @pytest.mark.parametrize("name", ["alexnet", "resnet18"])
    def test_torchvision_state_dict_round_trip(self, tmp_path, name):
        source = build_encoder(name)
        path = tmp_path / f"{name}.pth"
        torch.save(torchvision_state_dict(source, name), path)
        target = build_encoder(name, pretrained=path).eval()
        for key, value in backbone_items(source).items():
            assert torch.equal(target.state_dict()[key], value), key
        assert torch.count_nonzero(target.head.weight) == 0
        assert torch.equal(target(torch.rand(1, 3, 96, 96)), torch.zeros(1, CODE_DIM))

    def test_report_lists_skipped_source_classifier(self, tmp_path):
        source = build_encoder("resnet18")
        path = tmp_path / "r18.pth"
        torch.save(torchvision_state_dict(source, "resnet18"), path)
        report = load_pretrained(build_encoder("resnet18"), path)
        assert report.source_format == "torchvision" and report.path == str(path)
        assert set(report.skipped) == {"fc.weight", "fc.bias"}
        assert report.missing == () and report.unexpected == ()
        assert len(report.loaded) == len(backbone_items(source))
        assert "loaded" in report.summary()

    def test_wrapped_and_data_parallel_state_dict(self, tmp_path):
        source = build_encoder("resnet18")
        sd = {f"module.{k}": v for k, v in torchvision_state_dict(source, "resnet18").items()}
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        path = tmp_path / "wrapped.pth"
        torch.save({"state_dict": sd, "epoch": 90}, path)
        target = build_encoder("resnet18", pretrained=path)
        assert torch.equal(target.conv1.weight, source.conv1.weight)
        assert torch.equal(target.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)

    def test_mofa_bench_checkpoint_restores_head_and_buffers(self, tmp_path):
        source = build_encoder("resnet18", output_scale={"gamma": 0.2}).eval()
        randomize_head(source)
        path = tmp_path / "encoder.pt"
        torch.save(source.state_dict(), path)
        target = build_encoder("resnet18").eval()
        report = load_pretrained(target, path)
        assert report.source_format == "mofa_bench"
        images = torch.rand(2, 3, 64, 64)
        with torch.no_grad():
            assert_close(target(images), source(images))

    def test_vggface_names_map_to_vgg16(self, encoders):
        encoder = encoders("vgg16")
        ours = encoder.state_dict()
        caffe_convs = [f"conv{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]
        conv_indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        sd: dict[str, torch.Tensor] = {}
        for caffe, idx in zip(caffe_convs, conv_indices):
            sd[f"{caffe}.weight"] = ours[f"features.{idx}.weight"]
            sd[f"{caffe}.bias"] = ours[f"features.{idx}.bias"]
        sd["fc6.weight"] = ours["classifier.0.weight"].view(4096, 512, 7, 7)  # stored as a conv
        sd["fc6.bias"] = ours["classifier.0.bias"]
        sd["fc7.weight"] = ours["classifier.3.weight"]
        sd["fc7.bias"] = ours["classifier.3.bias"]
        sd["fc8.weight"] = torch.zeros(2622, 4096)
        sd["fc8.bias"] = torch.zeros(2622)
        mapped, report = convert_state_dict(encoder, sd)
        assert report.source_format == "vggface"
        assert report.missing == () and report.unexpected == ()
        assert set(report.skipped) == {"fc8.weight", "fc8.bias"}
        assert mapped["features.28.weight"] is ours["features.28.weight"]
        assert mapped["classifier.0.weight"].shape == (4096, 25088)
        assert torch.equal(mapped["classifier.0.weight"], ours["classifier.0.weight"])

    def test_vggface_weights_switch_normalization(self, encoders, tmp_path):
        encoder = encoders("vgg16")
        path = tmp_path / "vgg_face_partial.pth"
        torch.save({"conv1_1.weight": encoder.features[0].weight.detach().clone(),
                    "conv1_1.bias": encoder.features[0].bias.detach().clone()}, path)
        try:
            with pytest.warns(UserWarning, match="missing"):
                report = load_pretrained(encoder, path, strict=False)
            assert report.normalization == "vggface"
            assert_close(encoder.input_mean.flatten(), torch.tensor(VGGFACE_MEAN))
            assert_close(encoder.input_std.flatten(), torch.tensor(VGGFACE_STD))
        finally:
            encoder.set_normalization(IMAGENET_MEAN, IMAGENET_STD)

    def test_missing_file_names_the_path(self, tmp_path):
        path = tmp_path / "nope" / "alexnet.pth"
        with pytest.raises(CheckpointError, match="not found.*alexnet.pth"):
            build_encoder("alexnet", pretrained=path)

    def test_unreadable_file_names_the_path(self, tmp_path):
        path = tmp_path / "garbage.pth"
        path.write_bytes(b"this is not a checkpoint")
        with pytest.raises(CheckpointError, match="garbage.pth"):
            load_pretrained(build_encoder("resnet18"), path)

    def test_not_a_state_dict_raises(self, tmp_path):
        path = tmp_path / "list.pth"
        torch.save([torch.zeros(2)], path)
        with pytest.raises(CheckpointError, match="state_dict"):
            load_pretrained(build_encoder("resnet18"), path)

    def test_other_architecture_raises(self, tmp_path):
        path = tmp_path / "r18.pth"
        torch.save(torchvision_state_dict(build_encoder("resnet18"), "resnet18"), path)
        with pytest.raises(CheckpointError, match="no tensor names match"):
            load_pretrained(build_encoder("alexnet"), path)

    def test_shape_mismatch_names_the_key(self, tmp_path):
        sd = torchvision_state_dict(build_encoder("resnet18"), "resnet18")
        sd["conv1.weight"] = torch.zeros(32, 3, 7, 7)
        path = tmp_path / "bad_shape.pth"
        torch.save(sd, path)
        with pytest.raises(CheckpointError, match="conv1.weight"):
            load_pretrained(build_encoder("resnet18"), path)

    def test_missing_and_unexpected_keys_strict_and_lenient(self, tmp_path):
        source = build_encoder("resnet18")
        sd = torchvision_state_dict(source, "resnet18")
        del sd["layer4.1.conv2.weight"]
        sd["extra.weight"] = torch.zeros(3)
        path = tmp_path / "partial.pth"
        torch.save(sd, path)
        target = build_encoder("resnet18")
        before = target.layer4[1].conv2.weight.detach().clone()
        with pytest.raises(CheckpointError, match="layer4.1.conv2.weight.*extra.weight"):
            load_pretrained(target, path)
        with pytest.warns(UserWarning, match="layer4.1.conv2.weight"):
            report = load_pretrained(target, path, strict=False)
        assert report.missing == ("layer4.1.conv2.weight",) and report.unexpected == ("extra.weight",)
        assert torch.equal(target.layer4[1].conv2.weight, before)
        assert torch.equal(target.conv1.weight, source.conv1.weight)

    def test_loading_never_downloads(self, monkeypatch):
        import urllib.request

        def fail(*args, **kwargs):
            raise AssertionError("network access attempted")

        monkeypatch.setattr(urllib.request, "urlopen", fail)
        with pytest.raises(CheckpointError, match="never downloads"):
            build_encoder("alexnet", pretrained="imagenet")

    @pytest.mark.slow
    def test_vgg16_torchvision_round_trip_through_a_file(self, tmp_path):
        source = build_encoder("vgg16")
        path = tmp_path / "vgg16.pth"
        torch.save(torchvision_state_dict(source, "vgg16"), path)
        target = build_encoder("vgg16", pretrained=path)
        for key, value in backbone_items(source).items():
            assert torch.equal(target.state_dict()[key], value), key


class TestParameterGroups:
    def test_only_the_z_translation_row_is_in_the_small_lr_group(self):
        encoder = build_encoder("resnet18")
        default, z = parameter_groups(encoder, lr=0.1, z_translation_lr=5e-4)
        assert default["lr"] == 0.1 and z["lr"] == 5e-4 and z["name"] == "z_translation"
        z_layer = encoder.head.z_translation
        assert [id(p) for p in z["params"]] == [id(z_layer.weight), id(z_layer.bias)]
        assert sum(p.numel() for p in z["params"]) == encoder.feature_dim + 1
        all_ids = {id(p) for p in encoder.parameters()}
        default_ids = [id(p) for p in default["params"]]
        assert len(default_ids) == len(set(default_ids))
        assert set(default_ids) | {id(p) for p in z["params"]} == all_ids
        assert not set(default_ids) & {id(p) for p in z["params"]}
        assert id(encoder.head.main.weight) in set(default_ids)

    def test_frozen_parameters_are_left_out(self):
        encoder = build_encoder("resnet18")
        encoder.conv1.weight.requires_grad_(False)
        default, _ = parameter_groups(encoder, 0.1, 5e-4)
        assert id(encoder.conv1.weight) not in {id(p) for p in default["params"]}

    def test_bad_arguments_raise(self):
        with pytest.raises(ConfigError, match="CodeHead"):
            parameter_groups(torch.nn.Linear(2, 2), 0.1, 5e-4)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=">= 0"):
            parameter_groups(build_encoder("resnet18"), -1.0, 5e-4)

    def test_adadelta_step_changes_z_translation_less(self):
        encoder = build_encoder("resnet18").eval()
        optimizer = torch.optim.Adadelta(parameter_groups(encoder, lr=0.1, z_translation_lr=5e-4))
        images = torch.rand(2, 3, 64, 64)
        conv1_before = encoder.conv1.weight.detach().clone()
        optimizer.zero_grad()
        (encoder.raw_output(images) - 1.0).pow(2).sum().backward()
        optimizer.step()
        with torch.no_grad():
            raw = encoder.raw_output(images)
        x_translation = raw[:, CODE_SLICES["translation"].start]
        z_translation = raw[:, Z_TRANSLATION_INDEX]
        assert torch.all(x_translation > 0)
        # Same gradient for both rows at step 0, and AdaDelta's step is linear in lr.
        assert_close(z_translation / x_translation, torch.full((2,), 5e-4 / 0.1), rtol=1e-3, atol=0.0)
        # The zero head passes no gradient to the backbone on the first step.
        assert torch.equal(encoder.conv1.weight, conv1_before)


class TestPackageLayout:
    @pytest.mark.parametrize("module,names", [
        ("head", ["OUTPUT_SCALE", "Z_TRANSLATION_INDEX", "CodeHead", "output_scale_vector", "parameter_groups"]),
        ("base", ["IMAGENET_MEAN", "IMAGENET_STD", "MIN_IMAGE_SIZE", "VGGFACE_MEAN", "VGGFACE_STD", "FaceEncoder"]),
        ("alexnet", ["AlexNetEncoder"]),
        ("vgg", ["VGG16Encoder"]),
        ("resnet", ["BasicBlock", "Bottleneck", "ResNetEncoder"]),
        ("pretrained", ["LoadReport", "convert_state_dict", "load_pretrained"]),
        ("registry", ["build_encoder", "encoder_names"]),
    ])
    def test_package_reexports_each_submodule_name(self, module, names):
        package = importlib.import_module("mofa_bench.encoders")
        submodule = importlib.import_module(f"mofa_bench.encoders.{module}")
        assert sorted(submodule.__all__) == sorted(names)
        for name in names:
            assert name in package.__all__ and getattr(package, name) is getattr(submodule, name), name

    def test_package_all_is_the_union_of_the_submodules(self):
        package = importlib.import_module("mofa_bench.encoders")
        modules = ("head", "base", "alexnet", "vgg", "resnet", "pretrained", "registry")
        names = [n for m in modules for n in importlib.import_module(f"mofa_bench.encoders.{m}").__all__]
        assert sorted(package.__all__) == sorted(names)
