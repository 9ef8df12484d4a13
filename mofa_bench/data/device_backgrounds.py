"""Random backgrounds for a whole batch at once, on its device, from the counter RNG.

:func:`counter_backgrounds` draws the four kinds of :mod:`mofa_bench.data.backgrounds`
(noise, gradient, texture, photo) with the same weights, parameter ranges and
constructions, but batched: every random number comes from the sample's
:class:`~mofa_bench.data.counter_rng.CounterStream`, so a background depends only on
``(seed, global index)``, and the images are made on the stream's device with a few
tensor operations per kind rather than one generator and a loop per sample. It is what
``data.generator: counter`` draws.

The layout of a sample's stream is fixed, whatever the kinds of the other samples: its
first :data:`PARAMETER_WORDS` words hold the kind and every kind's parameters (drawn in
one call for the batch; a kind's words are used only by the samples of that kind): the
kind (1); noise (mean colour, σ, cell, colour mix); gradient (linear or radial, angle,
centre, radius, two colours); texture (value noise or sinusoids, the parameters of both
and of the colour-variation noise, two colours and the variation's amount); photo (which
photo, crop scale and offset, flip, brightness, contrast, saturation, gains). The fields
start at word ``k · 2²⁶``: the noise's ``4 × H × W`` normals (k = 1), the texture's
value-noise grids (k = 2) and its colour variation's (k = 3), each drawn in one call for
the samples of that kind.

Where the batched construction differs from the per-sample one (same distribution
families, not the same images for a seed):

- noise cells of ``c`` px repeat one normal of the full-resolution field per cell (the
  field's value at the cell's top-left pixel) instead of drawing a ``⌈H/c⌉ × ⌈W/c⌉`` grid;
- value-noise grids are drawn at the largest size (``4 · 2ᵒ + 1`` per side at octave
  ``o``) and each sample uses its top-left ``base · 2ᵒ + 1`` corner; samples with the same
  base are upsampled together (bicubic, as before);
- sinusoid textures always draw six waves and keep the first 2-6;
- photo crops are resampled with ``grid_sample`` (bilinear) at ``k × k`` points per
  output pixel and averaged (a box filter; ``k`` = the largest downscale any crop of the
  configured photos can need at this size, so it never depends on the batch) instead of
  ``interpolate(..., antialias=True)`` (a triangle filter).

The photos are read once per device and kept there (as float32).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mofa_bench.data.backgrounds import BackgroundConfig, _load_photos
from mofa_bench.data.counter_rng import CounterStream
from mofa_bench.errors import InputError

__all__ = ["PARAMETER_WORDS", "counter_backgrounds"]

#: Value-noise bases (cells of the first octave) are drawn in ``[2, _MAX_BASE]``.
_MAX_BASE = 4
#: Sinusoid textures draw this many waves and keep the first 2-6.
_MAX_WAVES = 6
#: At most this many samples per output pixel and axis when photo crops are shrunk.
_MAX_SUPERSAMPLE = 16
#: Words of a sample's background stream per field region (its k-th field starts at k · this).
FIELD_REGION = 1 << 26
#: The region of each field.
_NOISE_FIELD, _TEXTURE_FIELD, _VARIATION_FIELD = 1, 2, 3
#: Parameter words of each kind, in the layout's order (the kind itself takes 1).
_PARAMETERS = {"noise": 3 + 1 + 1 + 1, "gradient": 5 + 6, "texture": 1 + 2 + (1 + 3 * _MAX_WAVES) + 2 + 6 + 1,
               "photo": 1 + 1 + 2 + 1 + 3 + 3}
#: Words at the start of a sample's background stream: its kind and every kind's parameters.
PARAMETER_WORDS = 1 + sum(_PARAMETERS.values())

_PHOTO_CACHE: dict[tuple[tuple[str, ...], str], tuple[torch.Tensor, ...]] = {}


def _device_photos(names: tuple[str, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """The loadable photos of ``names`` as ``(3, h, w)`` float32 in [0, 1] on ``device`` (cached)."""
    key = (names, str(device))
    if key not in _PHOTO_CACHE:
        _PHOTO_CACHE[key] = tuple(p.to(device=device, dtype=torch.float32) / 255.0 for p in _load_photos(names))
    return _PHOTO_CACHE[key]


def _grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, H, W)`` pixel-centre coordinates normalised to [0, 1] (x, y)."""
    y = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
    x = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
    return x.view(1, 1, width).expand(1, height, width), y.view(1, height, 1).expand(1, height, width)


def _normalise(t: torch.Tensor) -> torch.Tensor:
    """Each ``(..., H, W)`` image mapped to [0, 1] by its own minimum and maximum."""
    lo = t.amin(dim=(-2, -1), keepdim=True)
    hi = t.amax(dim=(-2, -1), keepdim=True)
    return (t - lo) / (hi - lo).clamp(min=1e-6)


def _palette(draws: CounterStream, t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``(R, H, W)`` values in [0, 1] through a random two-colour blend per sample → ``(R, 3, H, W)``."""
    c0 = draws.uniform(3, 1, 1, rows=rows)
    c1 = draws.uniform(3, 1, 1, rows=rows)
    return c0 + (c1 - c0) * t.unsqueeze(1)


def _noise(draws: CounterStream, rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    mean = draws.uniform(3, 1, 1, rows=rows)
    std = draws.uniform(1, 1, 1, low=0.03, high=0.3, rows=rows)
    cell = draws.integers(1, 9, 1, rows=rows)  # (R, 1)
    colour_mix = draws.uniform(1, 1, 1, rows=rows)
    field = draws.fork(_NOISE_FIELD * FIELD_REGION).normal(4, height, width, rows=rows)  # grey, then colour
    # Cells: each pixel takes the field's value at its cell's top-left pixel.
    ys = torch.arange(height, device=draws.device).view(1, height)
    xs = torch.arange(width, device=draws.device).view(1, width)
    src_y = (ys // cell) * cell  # (R, H)
    src_x = (xs // cell) * cell  # (R, W)
    flat = (src_y.unsqueeze(2) * width + src_x.unsqueeze(1)).view(-1, 1, height * width).expand(-1, 4, -1)
    field = field.view(-1, 4, height * width).gather(2, flat).view(-1, 4, height, width)
    noise = (1.0 - colour_mix) * field[:, :1] + colour_mix * field[:, 1:]
    return mean + std * noise


def _gradient(draws: CounterStream, rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    x, y = _grid(height, width, draws.device)
    linear = draws.uniform(1, 1, rows=rows) < 0.7
    angle = draws.uniform(1, 1, low=0.0, high=2.0 * math.pi, rows=rows)
    cx = draws.uniform(1, 1, rows=rows)
    cy = draws.uniform(1, 1, rows=rows)
    radius = draws.uniform(1, 1, low=0.3, high=1.2, rows=rows)
    along = _normalise(x * torch.cos(angle) + y * torch.sin(angle))
    radial = (((x - cx) ** 2 + (y - cy) ** 2).sqrt() / radius).clamp(max=1.0)
    return _palette(draws, torch.where(linear, along, radial), rows)


def _value_noise(draws: CounterStream, rows: torch.Tensor, height: int, width: int, channels: int,
                 octaves: int, region: int) -> torch.Tensor:
    """Fractal value noise ``(R, C, H, W)`` in [0, 1] (see the module docstring); its grids
    come from field region ``region``."""
    persistence = draws.uniform(1, 1, 1, low=0.35, high=0.7, rows=rows)
    base = draws.integers(2, _MAX_BASE + 1, rows=rows)  # (R,)
    sides = [_MAX_BASE * 2 ** octave + 1 for octave in range(octaves)]
    grids = draws.fork(region * FIELD_REGION).uniform(channels * sum(side * side for side in sides), rows=rows)
    grids = grids.split([channels * side * side for side in sides], dim=1)
    work = (min(height, 96), min(width, 96))
    total = torch.zeros(len(rows), channels, *work, device=draws.device)
    for octave, side in enumerate(sides):
        grid = grids[octave].reshape(-1, channels, side, side)
        for b in range(2, _MAX_BASE + 1):
            which = torch.nonzero(base == b).flatten()
            if which.numel() == 0:
                continue
            cells = b * 2 ** octave
            up = F.interpolate(grid[which, :, :cells + 1, :cells + 1], size=work, mode="bicubic", align_corners=True)
            total[which] += persistence[which] ** octave * up
    if work != (height, width):
        total = F.interpolate(total, size=(height, width), mode="bilinear", align_corners=False)
    return _normalise(total)


def _sinusoids(draws: CounterStream, rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sums of 2-6 random plane waves ``(R, H, W)`` in [0, 1]."""
    x, y = _grid(height, width, draws.device)
    waves = draws.integers(2, _MAX_WAVES + 1, 1, rows=rows)  # (R, 1)
    freq = draws.uniform(_MAX_WAVES, low=1.0, high=12.0, rows=rows)
    angle = draws.uniform(_MAX_WAVES, low=0.0, high=math.pi, rows=rows)
    phase = draws.uniform(_MAX_WAVES, low=0.0, high=2.0 * math.pi, rows=rows)
    kept = (torch.arange(_MAX_WAVES, device=draws.device).view(1, -1) < waves).float()
    f, a, p, k = (v.view(-1, _MAX_WAVES, 1, 1) for v in (freq, angle, phase, kept))
    total = (k * torch.sin(2.0 * math.pi * f * (x * torch.cos(a) + y * torch.sin(a)) + p)).sum(1)
    return _normalise(total)


def _texture(draws: CounterStream, rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    smooth = draws.uniform(1, 1, rows=rows) < 0.5
    value = _value_noise(draws, rows, height, width, 1, octaves=5, region=_TEXTURE_FIELD)[:, 0]
    waves = _sinusoids(draws, rows, height, width)
    variation = _value_noise(draws, rows, height, width, 3, octaves=3, region=_VARIATION_FIELD) - 0.5
    colours = _palette(draws, torch.where(smooth, value, waves), rows)
    return colours + draws.uniform(1, 1, 1, low=0.0, high=0.3, rows=rows) * variation


def _supersampling(photos: tuple[torch.Tensor, ...], height: int, width: int) -> int:
    """Samples per output pixel and axis: the largest shrink factor of any crop at this size."""
    aspect = width / height
    widest = max(min(p.shape[-1], p.shape[-2] * aspect) for p in photos)
    return max(1, min(_MAX_SUPERSAMPLE, math.ceil(widest / width)))


def _photo(draws: CounterStream, rows: torch.Tensor, height: int, width: int,
           config: BackgroundConfig) -> torch.Tensor:
    photos = _device_photos(config.photos, draws.device)
    device = draws.device
    sizes = torch.tensor([[p.shape[-2], p.shape[-1]] for p in photos], dtype=torch.int64, device=device)
    which = draws.integers(0, len(photos), rows=rows)  # (R,)
    ph, pw = sizes[which, 0], sizes[which, 1]
    aspect = width / height
    scale = draws.uniform(rows=rows, low=0.25, high=1.0, dtype=torch.float64)
    crop_w = scale * torch.minimum(pw.double(), ph.double() * aspect)
    cw = torch.minimum(pw, crop_w.round().long()).clamp(min=1)
    ch = torch.minimum(ph, (crop_w / aspect).round().long()).clamp(min=1)
    x0 = draws.integers(0, pw - cw + 1, rows=rows)
    y0 = draws.integers(0, ph - ch + 1, rows=rows)
    flip = draws.uniform(1, 1, 1, rows=rows) < 0.5
    j = config.jitter
    brightness, contrast, saturation = (draws.uniform(1, 1, 1, low=1.0 - j, high=1.0 + j, rows=rows)
                                        for _ in range(3))
    gains = 1.0 + j * (draws.uniform(3, 1, 1, rows=rows) - 0.5)

    # Crop and shrink: k × k bilinear samples per output pixel, averaged.
    k = _supersampling(photos, height, width)
    u = (torch.arange(width * k, device=device, dtype=torch.float64) + 0.5) / (width * k)  # (Wk,)
    v = (torch.arange(height * k, device=device, dtype=torch.float64) + 0.5) / (height * k)
    src_x = x0.double().view(-1, 1) + u.view(1, -1) * cw.double().view(-1, 1)  # photo pixels (R, Wk)
    src_y = y0.double().view(-1, 1) + v.view(1, -1) * ch.double().view(-1, 1)
    gx = (2.0 * src_x / pw.double().view(-1, 1) - 1.0).float()  # align_corners=False coordinates
    gy = (2.0 * src_y / ph.double().view(-1, 1) - 1.0).float()
    grid = torch.stack(torch.broadcast_tensors(gx.unsqueeze(1), gy.unsqueeze(2)), dim=-1)  # (R, Hk, Wk, 2)
    out = torch.empty(len(rows), 3, height, width, device=device)
    for p, photo in enumerate(photos):
        mine = torch.nonzero(which == p).flatten()
        if mine.numel() == 0:
            continue
        # One call per photo: its samples' grids side by side.
        sampled = F.grid_sample(photo.unsqueeze(0), grid[mine].reshape(1, -1, width * k, 2), mode="bilinear",
                                padding_mode="border", align_corners=False)
        sampled = sampled.view(3, len(mine), height * k, width * k).transpose(0, 1)
        out[mine] = F.avg_pool2d(sampled, k) if k > 1 else sampled
    out = torch.where(flip, out.flip(-1), out)
    out = out * brightness
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean
    grey = out.mean(1, keepdim=True)
    out = grey + (out - grey) * saturation
    return out * gains


_KINDS = {"noise": _noise, "gradient": _gradient, "texture": _texture}


def counter_backgrounds(draws: CounterStream, size: int | tuple[int, int], config: BackgroundConfig | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One background per sample of ``draws`` (its samples' background stream), on its device.

    Args:
        draws: the samples' background stream; takes its next words in the fixed layout of
            the module docstring.
        size: ``H`` (square) or ``(H, W)`` in pixels.
        config: kinds and weights; default :class:`BackgroundConfig()`.
        dtype: float dtype of the result.

    Returns:
        ``(B, 3, H, W)`` RGB in [0, 1] on ``draws.device`` (zeros when every weight is 0).

    Raises:
        InputError: an empty batch or a non-positive size.
    """
    config = config or BackgroundConfig()
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if len(draws) == 0:
        raise InputError("draws: expected at least one sample")
    if height <= 0 or width <= 0:
        raise InputError(f"size: expected positive (H, W), got {size!r}")
    if 4 * height * width > FIELD_REGION:
        raise InputError(f"size: {height}x{width} px backgrounds need more words than a field region holds")
    kinds, probs = config.active_kinds()
    out = torch.zeros(len(draws), 3, height, width, device=draws.device)
    if not kinds:
        return out.to(dtype)
    draws.prefetch(PARAMETER_WORDS)
    edges = torch.cumsum(probs, 0).to(draws.device)
    u = draws.uniform(dtype=torch.float64)
    choice = torch.searchsorted(edges, u, right=True).clamp(max=len(kinds) - 1)
    for name, taken in _PARAMETERS.items():
        rows = (torch.nonzero(choice == kinds.index(name)).flatten() if name in kinds
                else torch.zeros(0, dtype=torch.int64, device=draws.device))
        start = draws.position
        if rows.numel():
            if name == "photo":
                out[rows] = _photo(draws, rows, height, width, config)
            else:
                out[rows] = _KINDS[name](draws, rows, height, width)
            if draws.position - start != taken:  # _PARAMETERS must list every parameter draw of the kind
                raise RuntimeError(f"{name} backgrounds took {draws.position - start} words, the layout says {taken}")
        draws.position = start + taken
    return out.clamp(0.0, 1.0).to(dtype)
