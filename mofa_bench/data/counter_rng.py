"""Counter-based random numbers on any device: Philox4x32-10 in torch integer arithmetic.

The default synthetic data (:class:`~mofa_bench.data.synthetic.SyntheticFaces` with
``generator="cpu"``) seeds one CPU ``torch.Generator`` per sample and stream; on a GPU
that means a generator, a few small draws and a host-to-device copy per sample. This
module draws the same kind of numbers for a whole batch in a few tensor operations on the
device the indices live on. Every value is a pure function of
``(seed, global index, stream, draw number)``:

- word ``d`` of sample ``g`` in stream ``s`` is word ``d mod 4`` of the Philox4x32-10 block
  with key ``(seed mod 2³², seed div 2³² mod 2³²)`` and counter
  ``(d div 4, s, g mod 2³², g div 2³²)`` (Salmon et al., "Parallel random numbers: as easy
  as 1, 2, 3", SC 2011; the Random123 reference, whose known-answer vectors the tests check);
- a uniform in (0, 1) is ``(w >> 8 + 0.5) / 2²⁴`` of one word ``w`` (24 bits: exact in
  float32 and float64, never 0 or 1);
- normals come in pairs from two words by Box–Muller, computed in float64 and rounded to
  the requested dtype: ``z₀ = r cos θ``, ``z₁ = r sin θ`` with ``r = √(-2 ln u₁)``,
  ``θ = 2π u₂`` and ``u = (w + 0.5) / 2³²`` (so ``|z| < 6.8``);
- integers in ``[low, high)`` are ``low + (w · (high - low)) >> 32`` (multiply-shift; its
  bias is below ``(high - low) / 2³²``).

Why Philox, and how: it is the generator CUDA's and PyTorch's own device RNGs use, well
tested (it passes BigCrush), and each block needs only 32-bit multiplies, adds and XORs.
Torch has no unsigned 32- or 64-bit arithmetic on every device, so the words live in int64
tensors and the 32 × 32 → 64-bit product is split into two 32 × 16-bit products: every
intermediate value stays in ``[0, 2⁵⁰)``, so nothing overflows, every right shift of a
non-negative number is a logical one, and the words are the same bits on every device and
platform. (A 64-bit hash such as SplitMix64 would need wrapping int64 multiplies, which
torch does not promise.) Uniforms and integers are therefore bit-identical on the CPU and
on CUDA; normals go through the devices' float64 ``log``, ``cos`` and ``sin``, whose last
bits may differ, so they agree to float64 rounding (and almost always bit for bit once
rounded to float32).

:class:`CounterStream` hands out consecutive draws of one stream for a batch of samples,
so code that draws ``uniform(3)`` then ``normal(4, H, W)`` reads like code that draws from
a ``torch.Generator``, while each value still depends only on its sample's index and
position. ``rows`` computes a draw for some samples only (a background kind that only some
samples have) and still advances the position for all, so the layout of a sample's stream
never depends on the other samples of its batch. Each call computes its words with a few
dozen elementwise kernels, so code that makes many small draws first :meth:`prefetches
<CounterStream.prefetch>` them in one call, and puts a large draw (an image-sized field)
in a region of its own, far along the stream (:meth:`CounterStream.fork`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mofa_bench.errors import InputError

__all__ = ["CounterStream", "counter_normal", "counter_uniform", "counter_words", "philox4x32"]

_LOW32 = 0xFFFFFFFF
#: Philox4x32 multipliers and Weyl key increments (Random123).
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
#: Rounds of Philox4x32-10.
PHILOX_ROUNDS = 10
#: Largest block number a counter holds (its first word).
_MAX_BLOCK = _LOW32


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high 32-bit words of ``a · m`` for int64 ``a`` in ``[0, 2³²)`` and a 32-bit ``m``.

    ``a · m = a · m_hi · 2¹⁶ + a · m_lo`` with both partial products below 2⁴⁸, so the
    high word is ``(a · m_hi + (a · m_lo >> 16)) >> 16`` and no int64 ever overflows.
    """
    p_hi = a * (m >> 16)
    p_lo = a * (m & 0xFFFF)
    hi = (p_hi + (p_lo >> 16)) >> 16
    lo = (((p_hi & 0xFFFF) << 16) + p_lo) & _LOW32
    return lo, hi


def philox4x32(counter: Sequence[torch.Tensor], key: Sequence[int | torch.Tensor],
               rounds: int = PHILOX_ROUNDS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Philox4x32 block function (Random123's ``philox4x32_R``), elementwise.

    Args:
        counter: four int64 tensors (broadcastable) of 32-bit words in ``[0, 2³²)``.
        key: two 32-bit words (ints or int64 tensors).
        rounds: number of rounds (10 for Philox4x32-10).

    Returns:
        The four output words, int64 tensors in ``[0, 2³²)``.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & _LOW32, (k1 + PHILOX_W1) & _LOW32
        lo0, hi0 = _mulhilo(c0, PHILOX_M0)
        lo1, hi1 = _mulhilo(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _as_indices(index: torch.Tensor | Sequence[int], device: torch.device | str | None) -> torch.Tensor:
    index = torch.as_tensor(index, device=device)
    if index.dim() != 1 or index.dtype in (torch.bool,) or index.dtype.is_floating_point or index.is_complex():
        raise InputError(f"index: expected a 1-D integer tensor of global sample indices, got {index.dtype} "
                         f"of shape {tuple(index.shape)}")
    index = index.to(device=device, dtype=torch.int64)
    if index.numel() and bool((index < 0).any()):
        raise InputError("index: global sample indices must be ≥ 0")
    return index


def counter_words(seed: int, index: torch.Tensor | Sequence[int], stream: int, first: int, count: int,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Random 32-bit words ``first, ..., first + count - 1`` of each sample's stream.

    Args:
        seed: dataset seed (any int; taken modulo 2⁶⁴ as the Philox key).
        index: ``(B,)`` global sample indices ``≥ 0``.
        stream: stream number in ``[0, 2³²)``.
        first: number of the first word, ``≥ 0``.
        count: how many words, ``≥ 0``.
        device: where to compute (default: ``index``'s device).

    Returns:
        ``(B, count)`` int64 in ``[0, 2³²)`` on ``device``.

    Raises:
        InputError: a negative index, ``first`` or ``count``, a stream outside 32 bits, or
            words past the counter's range.
    """
    index = _as_indices(index, device if device is not None else getattr(index, "device", None))
    if not 0 <= int(stream) <= _LOW32:
        raise InputError(f"stream: expected an integer in [0, 2³²), got {stream!r}")
    if first < 0 or count < 0:
        raise InputError(f"first/count: expected integers ≥ 0, got {first}/{count}")
    if (first + count) // 4 > _MAX_BLOCK:
        raise InputError(f"words {first}..{first + count}: past the {4 * (_MAX_BLOCK + 1)} words of a stream")
    if count == 0:
        return torch.zeros(index.numel(), 0, dtype=torch.int64, device=index.device)
    seed = int(seed) & ((1 << 64) - 1)
    key = (seed & _LOW32, seed >> 32)
    block0, block1 = first // 4, (first + count - 1) // 4
    blocks = torch.arange(block0, block1 + 1, dtype=torch.int64, device=index.device).view(1, -1)
    g = index.view(-1, 1)
    ones = torch.ones_like(blocks)
    counter = (blocks.expand(g.shape[0], -1), torch.full_like(g, int(stream)) * ones,
               (g & _LOW32) * ones, (g >> 32) * ones)
    words = torch.stack(philox4x32(counter, key), dim=-1).reshape(g.shape[0], -1)
    offset = first - 4 * block0
    return words[:, offset:offset + count]


def _uniform_from_words(words: torch.Tensor) -> torch.Tensor:
    """float64 ``(w >> 8 + 0.5) / 2²⁴`` in (0, 1): exact in float32 too."""
    return ((words >> 8).to(torch.float64) + 0.5) * 2.0 ** -24


def _normal_from_words(words: torch.Tensor, count: int) -> torch.Tensor:
    """float64 standard normals by Box–Muller from ``(B, 2k)`` words; the first ``count`` of them."""
    if count == 0:
        return torch.zeros(words.shape[0], 0, dtype=torch.float64, device=words.device)
    pairs = words.view(words.shape[0], -1, 2).to(torch.float64)
    u1 = (pairs[..., 0] + 0.5) * 2.0 ** -32
    u2 = (pairs[..., 1] + 0.5) * 2.0 ** -32
    radius = torch.sqrt(-2.0 * torch.log(u1))
    angle = (2.0 * math.pi) * u2
    z = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    return z.reshape(words.shape[0], -1)[:, :count]


def counter_uniform(seed: int, index: torch.Tensor | Sequence[int], stream: int, first: int, count: int,
                    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """``(B, count)`` uniforms in (0, 1) from words ``first, ...`` (see the module docstring)."""
    return _uniform_from_words(counter_words(seed, index, stream, first, count, device)).to(dtype)


def counter_normal(seed: int, index: torch.Tensor | Sequence[int], stream: int, first: int, count: int,
                   dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """``(B, count)`` standard normals from words ``first, ..., first + 2⌈count/2⌉ - 1`` (Box–Muller pairs)."""
    words = counter_words(seed, index, stream, first, count + count % 2, device)
    return _normal_from_words(words, count).to(dtype)


class CounterStream:
    """Consecutive draws of one stream for a batch of samples (a stateful view of the counter RNG).

    Each call takes the next words of every sample's stream: ``uniform(3)`` takes words
    ``p .. p+2``, then ``normal(4, H, W)`` the next ``4HW`` (rounded up to even), and so on,
    so a value depends only on ``(seed, index, stream)`` and the sequence of calls, never
    on the other samples.

    Args:
        seed: dataset seed.
        index: ``(B,)`` global sample indices.
        stream: stream number (e.g. :data:`~mofa_bench.data.synthetic.CODE_STREAM`).
        device: where the draws are made (default: ``index``'s device).

    Every draw method takes ``*shape`` (per sample) and ``rows``: ``None`` (every sample)
    or a 1-D tensor of positions in the batch to draw for (the result then has
    ``len(rows)`` rows); the stream advances by the same number of words either way.
    """

    def __init__(self, seed: int, index: torch.Tensor | Sequence[int], stream: int,
                 device: torch.device | str | None = None) -> None:
        self.seed = int(seed)
        self.index = _as_indices(index, device if device is not None else getattr(index, "device", None))
        self.stream = int(stream)
        self.position = 0
        """Number of the next word of every sample's stream."""
        self._buffer: torch.Tensor | None = None
        self._buffer_start = 0

    def __len__(self) -> int:
        return self.index.numel()

    @property
    def device(self) -> torch.device:
        return self.index.device

    def _take(self, count: int, rows: torch.Tensor | None) -> torch.Tensor:
        rows = None if rows is None else rows.to(self.device)
        buffer, offset = self._buffer, self.position - self._buffer_start
        if buffer is not None and 0 <= offset and offset + count <= buffer.shape[1]:
            words = buffer[:, offset:offset + count]
            words = words if rows is None else words[rows]
        else:
            index = self.index if rows is None else self.index[rows]
            words = counter_words(self.seed, index, self.stream, self.position, count)
        self.position += count
        return words

    def prefetch(self, count: int) -> None:
        """Compute the next ``count`` words of every sample at once; later draws within them
        are read from there (the same values, in one call instead of many)."""
        self._buffer = counter_words(self.seed, self.index, self.stream, self.position, count)
        self._buffer_start = self.position

    def fork(self, position: int) -> "CounterStream":
        """Another view of the same samples' stream, starting at word ``position`` (a region of
        the stream that this view's draws do not reach)."""
        other = CounterStream(self.seed, self.index, self.stream)
        other.position = int(position)
        return other

    def skip(self, count: int) -> None:
        """Advance every sample's stream by ``count`` words without drawing."""
        self.position += int(count)

    def words(self, *shape: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Raw words ``(R, *shape)`` int64 in ``[0, 2³²)``."""
        n = math.prod(shape)
        words = self._take(n, rows)
        return words.view(words.shape[0], *shape)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0, rows: torch.Tensor | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Uniforms in (low, high), ``(R, *shape)`` (computed in float64, rounded to ``dtype``)."""
        u = _uniform_from_words(self.words(*shape, rows=rows))
        return (low + (high - low) * u).to(dtype)

    def normal(self, *shape: int, rows: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normals ``(R, *shape)``; takes ``2⌈n/2⌉`` words for ``n`` values."""
        n = math.prod(shape)
        words = self._take(n + n % 2, rows)
        return _normal_from_words(words, n).to(dtype).view(words.shape[0], *shape)

    def integers(self, low: int, high: int | torch.Tensor, *shape: int,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
        """Integers in ``[low, high)``, ``(R, *shape)`` int64.

        ``high`` may be an int or an int64 tensor broadcastable to ``(R, *shape)`` (a bound
        per sample); ``high - low`` must lie in ``[1, 2³¹]``.
        """
        span = torch.as_tensor(high, dtype=torch.int64, device=self.device) - int(low)
        if span.numel() and (bool((span < 1).any()) or bool((span > 2**31).any())):
            raise InputError(f"integers: expected 1 ≤ high - low ≤ 2³¹, got low={low}, high={high}")
        return int(low) + ((self.words(*shape, rows=rows) * span) >> 32)
