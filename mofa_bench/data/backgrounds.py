"""Random backgrounds for synthetic renders (background augmentation).

MoFA's synthetic ground-truth experiment composites rendered faces over augmented
backgrounds so that an encoder cannot rely on a constant backdrop to find the face. Four
kinds of background are drawn, each with a configurable weight:

- ``"noise"``: a random mean colour plus per-pixel Gaussian noise, at a random cell size
  (1-8 px blocks) and mixing colour and luminance noise.
- ``"gradient"``: a linear (70 %) or radial (30 %) blend between two random colours.
- ``"texture"``: smooth random textures, either fractal value noise (bicubically upsampled
  random grids over five octaves, Perlin-like) or a sum of 2-6 random plane sinusoids,
  mapped through a random two-colour palette with a little colour variation.
- ``"photo"``: random crops (25-100 % of the shorter side) of photographs shipped with
  scikit-image (:data:`DEFAULT_PHOTOS`), flipped horizontally half the time, with
  brightness, contrast, saturation and per-channel gain jitter. Images that show a face
  (``astronaut``, ``camera``) are left out of the default list on purpose. When
  scikit-image is not installed (or a listed image cannot be loaded), the kind is skipped
  with a logged note and the other kinds' weights are renormalised.

Everything is drawn on the CPU from a ``torch.Generator``, so a generator in a given state
always yields the same backgrounds (given the same set of loadable photos); move the
result to the rendering device afterwards.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from mofa_bench.errors import ConfigError, InputError

__all__ = ["BACKGROUND_KINDS", "DEFAULT_PHOTOS", "PHOTO_NAMES", "BackgroundConfig", "available_photos",
           "sample_backgrounds"]

logger = logging.getLogger(__name__)

#: Background kinds, in the order used to index the configured weights.
BACKGROUND_KINDS: tuple[str, ...] = ("noise", "gradient", "texture", "photo")

#: ``skimage.data`` images used by the ``"photo"`` kind: colour photos and grey textures
#: that load without a download and show no human face.
DEFAULT_PHOTOS: tuple[str, ...] = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "page",
)


#: Every name :attr:`BackgroundConfig.photos` may list: the ``skimage.data`` images that
#: ship inside scikit-image (no download) and show no human face. A config names photos
#: from this list only; no other ``skimage.data`` function is ever called.
PHOTO_NAMES: tuple[str, ...] = (
    "brick", "cell", "chelsea", "checkerboard", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
    "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
    "rocket", "text",
)


@dataclass(frozen=True)
class BackgroundConfig:
    """Which backgrounds to draw and how often.

    Weights are relative (they need not sum to one); a weight of 0 disables a kind. With
    every weight 0 the backgrounds are black (no augmentation).

    Attributes:
        noise: weight of per-pixel noise backgrounds.
        gradient: weight of linear/radial two-colour gradients.
        texture: weight of smooth random textures (fractal value noise, sinusoids).
        photo: weight of jittered random crops of :attr:`photos`.
        photos: ``skimage.data`` image names used by the ``"photo"`` kind, from
            :data:`PHOTO_NAMES`.
        jitter: colour-jitter strength of photo crops (brightness, contrast and
            saturation factors drawn in ``1 ± jitter``, channel gains in ``1 ± jitter/2``).
    """

    noise: float = 1.0
    gradient: float = 1.0
    texture: float = 1.0
    photo: float = 1.0
    photos: tuple[str, ...] = DEFAULT_PHOTOS
    jitter: float = 0.3

    def __post_init__(self) -> None:
        for name in (*BACKGROUND_KINDS, "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"BackgroundConfig.{name}: expected a finite number ≥ 0, got {value!r}")
        if self.jitter >= 1.0:
            raise ConfigError(f"BackgroundConfig.jitter: expected a value in [0, 1), got {self.jitter!r}")
        if isinstance(self.photos, str) or not all(isinstance(p, str) for p in self.photos):
            raise ConfigError(f"BackgroundConfig.photos: expected a sequence of skimage.data names, "
                              f"got {self.photos!r}")
        unknown = [p for p in self.photos if p not in PHOTO_NAMES]
        if unknown:
            raise ConfigError(f"BackgroundConfig.photos: unknown photo(s) {unknown}; choose from "
                              f"{', '.join(PHOTO_NAMES)}")
        object.__setattr__(self, "photos", tuple(self.photos))

    @classmethod
    def disabled(cls) -> "BackgroundConfig":
        """Every weight 0: renders over black backgrounds."""
        return cls(noise=0.0, gradient=0.0, texture=0.0, photo=0.0)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "BackgroundConfig":
        """Build from a mapping (YAML config, dataset manifest); unknown keys raise ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"BackgroundConfig: unknown keys {unknown}; known: {sorted(known)}")
        values = dict(values)
        if "photos" in values and not isinstance(values["photos"], str):
            values["photos"] = tuple(values["photos"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (``photos`` as a list); inverse of :meth:`from_dict`."""
        out = asdict(self)
        out["photos"] = list(self.photos)
        return out

    def weights(self) -> dict[str, float]:
        """Kind → configured weight."""
        return {kind: float(getattr(self, kind)) for kind in BACKGROUND_KINDS}

    def active_kinds(self) -> tuple[tuple[str, ...], torch.Tensor]:
        """Kinds that will actually be drawn here and their probabilities.

        ``"photo"`` is dropped when none of :attr:`photos` can be loaded.

        Returns:
            ``(kinds, probs)``: names and a float64 ``(K,)`` tensor summing to 1
            (``K = 0`` when every weight is 0).
        """
        kinds, weights = [], []
        for kind, weight in self.weights().items():
            if weight <= 0:
                continue
            if kind == "photo" and not _load_photos(self.photos):
                continue
            kinds.append(kind)
            weights.append(weight)
        probs = torch.tensor(weights, dtype=torch.float64)
        if probs.numel():
            probs = probs / probs.sum()
        return tuple(kinds), probs


# ---------------------------------------------------------------------------- photos
_NOTED: set[str] = set()
#: Photos are stored with their shorter side at most this many pixels.
_MAX_PHOTO_SIDE = 512


def _note_once(key: str, message: str) -> None:
    if key not in _NOTED:
        _NOTED.add(key)
        logger.warning(message)


@lru_cache(maxsize=8)
def _load_photos(names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """``skimage.data`` images as ``(3, h, w)`` uint8 tensors (grey ones replicated)."""
    if not names:
        return ()
    try:
        import skimage.data as skdata
    except ImportError:
        _note_once("skimage", "background augmentation: scikit-image is not installed, so 'photo' "
                              "backgrounds are skipped (pip install scikit-image to enable them)")
        return ()
    photos = []
    for name in names:
        if name not in PHOTO_NAMES:  # never call an arbitrary skimage.data function
            _note_once(f"photo:{name}", f"background augmentation: {name!r} is not one of PHOTO_NAMES; skipping it")
            continue
        try:
            array = torch.as_tensor(getattr(skdata, name)())
        except Exception as exc:  # noqa: BLE001 - any loader failure just drops that photo
            _note_once(f"photo:{name}", f"background augmentation: skimage.data.{name} could not be loaded "
                                        f"({type(exc).__name__}: {exc}); skipping it")
            continue
        if array.dtype == torch.bool:
            array = array.to(torch.uint8) * 255
        if array.dtype != torch.uint8:
            array = (array.double() / max(float(array.max()), 1.0) * 255.0).round().clamp(0, 255).to(torch.uint8)
        if array.dim() == 2:
            array = array.unsqueeze(-1).expand(-1, -1, 3)
        photo = array[..., :3].permute(2, 0, 1).contiguous()
        scale = _MAX_PHOTO_SIDE / min(photo.shape[-2:])
        if scale < 1.0:
            size = (round(photo.shape[-2] * scale), round(photo.shape[-1] * scale))
            small = F.interpolate(photo.unsqueeze(0).float(), size=size, mode="bilinear", antialias=True,
                                  align_corners=False)
            photo = small[0].round().clamp(0, 255).to(torch.uint8)
        photos.append(photo)
    return tuple(photos)


def available_photos(config: BackgroundConfig | None = None) -> int:
    """How many of the configured photos load here (0 without scikit-image)."""
    return len(_load_photos((config or BackgroundConfig()).photos))


# ---------------------------------------------------------------------------- kinds
def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=generator, dtype=torch.float32)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(_rand(generator, 1))


def _pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H, W)`` pixel-centre coordinates normalised to [0, 1] (x, y)."""
    y = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    x = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    return x.view(1, width).expand(height, width), y.view(height, 1).expand(height, width)


def _palette(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Map ``(H, W)`` values in [0, 1] through a random two-colour blend → ``(3, H, W)``."""
    c0, c1 = _rand(generator, 3, 1, 1), _rand(generator, 3, 1, 1)
    return c0 + (c1 - c0) * t.unsqueeze(0)


def _normalise(t: torch.Tensor) -> torch.Tensor:
    lo, hi = t.min(), t.max()
    return (t - lo) / (hi - lo).clamp(min=1e-6)


def _noise_background(height: int, width: int, generator: torch.Generator, config: BackgroundConfig) -> torch.Tensor:
    mean = _rand(generator, 3, 1, 1)
    std = _uniform(generator, 0.03, 0.3)
    cell = int(torch.randint(1, 9, (1,), generator=generator))
    colour_mix = _uniform(generator, 0.0, 1.0)
    gh, gw = math.ceil(height / cell), math.ceil(width / cell)
    grey = torch.randn(1, gh, gw, generator=generator)
    colour = torch.randn(3, gh, gw, generator=generator)
    noise = (1.0 - colour_mix) * grey + colour_mix * colour
    noise = noise.repeat_interleave(cell, 1).repeat_interleave(cell, 2)[:, :height, :width]
    return mean + std * noise


def _gradient_background(height: int, width: int, generator: torch.Generator, config: BackgroundConfig) -> torch.Tensor:
    x, y = _pixel_grid(height, width)
    if float(_rand(generator, 1)) < 0.7:
        angle = _uniform(generator, 0.0, 2.0 * math.pi)
        t = _normalise(x * math.cos(angle) + y * math.sin(angle))
    else:
        cx, cy = _uniform(generator, 0.0, 1.0), _uniform(generator, 0.0, 1.0)
        radius = _uniform(generator, 0.3, 1.2)
        t = (((x - cx) ** 2 + (y - cy) ** 2).sqrt() / radius).clamp(max=1.0)
    return _palette(t, generator)


def _value_noise(height: int, width: int, channels: int, generator: torch.Generator, octaves: int = 5) -> torch.Tensor:
    """Fractal value noise ``(C, H, W)`` in [0, 1]: bicubically upsampled random grids.

    The octaves are summed at a working resolution of at most 96 px per side and the
    sum is upsampled bilinearly once (the textures are smooth, so nothing is lost).
    """
    persistence = _uniform(generator, 0.35, 0.7)
    base = int(torch.randint(2, 5, (1,), generator=generator))
    work = (min(height, 96), min(width, 96))
    total = torch.zeros(1, channels, *work)
    for octave in range(octaves):
        cells = base * 2 ** octave
        grid = _rand(generator, 1, channels, cells + 1, cells + 1)
        total = total + persistence ** octave * F.interpolate(grid, size=work, mode="bicubic", align_corners=True)
    if work != (height, width):
        total = F.interpolate(total, size=(height, width), mode="bilinear", align_corners=False)
    return torch.stack([_normalise(c) for c in total[0]])


def _sinusoid_texture(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Sum of 2-6 random plane waves ``(H, W)`` in [0, 1]."""
    x, y = _pixel_grid(height, width)
    waves = int(torch.randint(2, 7, (1,), generator=generator))
    total = torch.zeros(height, width)
    for _ in range(waves):
        freq = _uniform(generator, 1.0, 12.0)
        angle = _uniform(generator, 0.0, math.pi)
        phase = _uniform(generator, 0.0, 2.0 * math.pi)
        total = total + torch.sin(2.0 * math.pi * freq * (x * math.cos(angle) + y * math.sin(angle)) + phase)
    return _normalise(total)


def _texture_background(height: int, width: int, generator: torch.Generator, config: BackgroundConfig) -> torch.Tensor:
    if float(_rand(generator, 1)) < 0.5:
        t = _value_noise(height, width, 1, generator)[0]
    else:
        t = _sinusoid_texture(height, width, generator)
    variation = _value_noise(height, width, 3, generator, octaves=3) - 0.5
    return _palette(t, generator) + _uniform(generator, 0.0, 0.3) * variation


def _photo_background(height: int, width: int, generator: torch.Generator, config: BackgroundConfig) -> torch.Tensor:
    photos = _load_photos(config.photos)
    photo = photos[int(torch.randint(len(photos), (1,), generator=generator))]
    _, ph, pw = photo.shape
    aspect = width / height
    crop_w = _uniform(generator, 0.25, 1.0) * min(pw, ph * aspect)
    crop_h = crop_w / aspect
    cw, ch = max(1, min(pw, round(crop_w))), max(1, min(ph, round(crop_h)))
    x0 = int(torch.randint(pw - cw + 1, (1,), generator=generator))
    y0 = int(torch.randint(ph - ch + 1, (1,), generator=generator))
    crop = photo[:, y0:y0 + ch, x0:x0 + cw].float().div(255.0).unsqueeze(0)
    out = F.interpolate(crop, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]
    if float(_rand(generator, 1)) < 0.5:
        out = out.flip(-1)
    j = config.jitter
    brightness = _uniform(generator, 1.0 - j, 1.0 + j)
    contrast = _uniform(generator, 1.0 - j, 1.0 + j)
    saturation = _uniform(generator, 1.0 - j, 1.0 + j)
    gains = 1.0 + j * (_rand(generator, 3, 1, 1) - 0.5)
    out = out * brightness
    out = (out - out.mean()) * contrast + out.mean()
    grey = out.mean(0, keepdim=True)
    out = grey + (out - grey) * saturation
    return out * gains


_KIND_FUNCTIONS: dict[str, Callable[[int, int, torch.Generator, BackgroundConfig], torch.Tensor]] = {
    "noise": _noise_background,
    "gradient": _gradient_background,
    "texture": _texture_background,
    "photo": _photo_background,
}


def sample_backgrounds(n: int, size: int | tuple[int, int], generator: torch.Generator | None = None,
                       config: BackgroundConfig | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw ``n`` random backgrounds on the CPU.

    The kind of each background is drawn first (one multinomial draw over the active
    kinds), then the backgrounds in order, all from ``generator``; the same generator
    state always gives the same result.

    Args:
        n: number of backgrounds (≥ 1).
        size: ``H`` (square) or ``(H, W)`` in pixels.
        generator: CPU ``torch.Generator``; default a freshly seeded one (non-reproducible).
        config: kinds and weights; default :class:`BackgroundConfig()`.
        dtype: float dtype of the result.

    Returns:
        ``(n, 3, H, W)`` RGB in [0, 1] on the CPU (zeros when every weight is 0).

    Raises:
        InputError: non-positive ``n`` or size.
    """
    config = config or BackgroundConfig()
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if n <= 0:
        raise InputError(f"n: expected a positive number of backgrounds, got {n}")
    if height <= 0 or width <= 0:
        raise InputError(f"size: expected positive (H, W), got {size!r}")
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    kinds, probs = config.active_kinds()
    out = torch.zeros(n, 3, height, width, dtype=dtype)
    if not kinds:
        return out
    choice = torch.multinomial(probs, n, replacement=True, generator=generator)
    for i in range(n):
        kind = kinds[int(choice[i])]
        out[i] = _KIND_FUNCTIONS[kind](height, width, generator, config).clamp(0.0, 1.0).to(dtype)
    return out
