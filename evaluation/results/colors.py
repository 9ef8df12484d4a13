"""One colour per renderer, the same in every figure of every report and diagnostic.

Renderers are named as suites, benchmarks and diagnostics name them: ``per_vertex``,
``pytorch3d`` (hard), ``pytorch3d_soft`` (a suite's named soft set-up), ``nvdiffrast``;
the benchmark's ``pytorch3d-soft`` and the diagnostics' ``pytorch3d (hard)`` /
``pytorch3d (soft)`` are the same renderers. Everything else (baselines, other
series) takes :data:`OTHER_COLORS` in turn, so it never looks like a renderer.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["OTHER_COLORS", "RENDERER_COLORS", "color_map", "renderer_color"]

#: Matplotlib colour of each renderer.
RENDERER_COLORS: dict[str, str] = {"per_vertex": "tab:blue", "pytorch3d": "tab:orange",
                                   "pytorch3d_soft": "tab:green", "nvdiffrast": "tab:red"}
#: Other spellings of the same renderers.
_ALIASES: dict[str, str] = {"pytorch3d (hard)": "pytorch3d", "pytorch3d-hard": "pytorch3d",
                            "pytorch3d (soft)": "pytorch3d_soft", "pytorch3d-soft": "pytorch3d_soft"}
#: Colours for what is not a renderer, in order of first appearance.
OTHER_COLORS: tuple[str, ...] = ("tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan",
                                 "black", "gold")


def renderer_color(name: str) -> str | None:
    """The colour of renderer ``name`` (any spelling in :data:`_ALIASES`), or ``None`` for another name."""
    key = str(name).strip()
    return RENDERER_COLORS.get(_ALIASES.get(key, key))


def color_map(names: Iterable[str], renderer_of: dict[str, str] | None = None) -> dict[str, str]:
    """``{name: colour}``: a renderer's colour where ``name`` is (or, via ``renderer_of``, stands for)
    a renderer, else the next of :data:`OTHER_COLORS` (cycling).

    Args:
        names: labels in drawing order (repeats ignored).
        renderer_of: ``{label: renderer}`` for labels that stand for a renderer (e.g. the
            series ``"MoFA · pytorch3d"``).
    """
    renderer_of = renderer_of or {}
    colors: dict[str, str] = {}
    others = 0
    for name in dict.fromkeys(names):
        color = renderer_color(renderer_of.get(name, name))
        if color is None:
            color = OTHER_COLORS[others % len(OTHER_COLORS)]
            others += 1
        colors[name] = color
    return colors
