"""Learning signal per code part: does each image's loss gradient at the mean face point at its truth?

Input: a train config (CONFIG: a packaged config's name such as ``converge``, or a YAML
file) whose model, camera, synthetic data and loss define the test faces and the loss;
the first --size faces of its test split. For each renderer (``per_vertex``, PyTorch3D
hard, PyTorch3D soft with the suites' ``blur_radius=0.5, faces_per_pixel=16``) and each
landmark setting of the CPU learning protocol (suite ``learning_cpu``: with landmarks, the
config's loss; without, ``loss.landmark: 0``, the photometric term divided by the visible
samples and the pose prior ``reg_rotation: 0.2``, ``reg_translation: 3e-5``), the MoFA
training loss through that renderer is differentiated per image at the mean face (the zero
code: the encoder's first prediction, frontal, centred, ambient-lit). For each direction
of code space — pitch, yaw, roll; x, y, z translation; the first --modes identity (α),
expression (δ) and reflectance (β) modes; the nine spherical-harmonic bands of the light,
each as white light (its R, G and B entries moved together) — the signal is the
correlation over the faces between the negated gradient along it and the truth along it
(true code − 0).

An encoder's first updates follow these gradients: 1 is the signal a supervised
regression of that entry gets, 0 none (the loss does not tell the faces apart along it),
a negative value points away from the truth; NaN: the gradient is the same on every face
(e.g. zero). At the zero code the statistical and pose priors have no gradient, so the
signal is the data terms' (photometric, and landmarks where on). The interval is a
percentile bootstrap over the faces (--resamples, 95 %).

Outputs: the table printed (one row per renderer × landmark setting, one column per
direction); --out, a tidy CSV with one row per renderer × landmark setting × direction
(``renderer, landmarks, part, entry, correlation, ci_low, ci_high, n_images,
mean_abs_gradient`` and the setting: image size, mesh level); --figure, a heat map PNG of
the correlations (rows: renderer × landmark setting; columns: directions). Runs on the CPU.

    mofa-bench diagnose signal converge --size 64 \\
        --out reports/renderers/signal.csv --figure reports/renderers/signal.png
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch

from evaluation.diagnostics.stats import BOOTSTRAP_RESAMPLES, bootstrap_interval, correlation
from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import LossWeights
from mofa_bench.methods.fit import code_loss
from mofa_checks import InputError

#: The renderers that run on the CPU: command-line name → (label in tables and figures,
#: backend, options). The soft one is the suites' soft setting (``learning_cpu.yaml`` ``cells:``).
RENDERERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "per_vertex": ("per_vertex", "per_vertex", {}),
    "pytorch3d": ("pytorch3d (hard)", "pytorch3d", {}),
    "pytorch3d-soft": ("pytorch3d (soft)", "pytorch3d", {"blur_radius": 0.5, "faces_per_pixel": 16}),
}
#: What the landmark-free cells of ``learning_cpu.yaml`` change in the config's loss.
NO_LANDMARKS: dict[str, Any] = {"landmark": 0.0, "photo_normalization": "weights", "reg_rotation": 0.2,
                                "reg_translation": 3.0e-5}
#: Landmark settings in table order.
LANDMARK_SETTINGS: tuple[bool, ...] = (True, False)
#: Pose entries: (part, entry name, code index).
POSE_ENTRIES: tuple[tuple[str, str, int], ...] = (
    *(("rotation", name, CODE_SLICES["rotation"].start + i) for i, name in enumerate(("pitch", "yaw", "roll"))),
    *(("translation", name, CODE_SLICES["translation"].start + i) for i, name in enumerate(("x", "y", "z"))),
)
#: Face parts whose first modes are measured.
MODE_PARTS: tuple[str, ...] = ("alpha", "delta", "beta")
#: Spherical-harmonic bands of the light (γ is band-major: ``γ.view(9, 3)``).
SH_BANDS = 9
#: Short column names of the heat map per part.
_SYMBOLS = {"alpha": "α", "delta": "δ", "beta": "β", "gamma": "γ"}


def setting_loss(loss: LossWeights, landmarks: bool) -> LossWeights:
    """The training loss of a landmark setting: the config's with landmarks, :data:`NO_LANDMARKS` without.

    Raises:
        InputError: landmarks on but the config's ``loss.landmark`` is 0.
    """
    if landmarks:
        if loss.landmark <= 0:
            raise InputError("loss.landmark: the landmark setting uses the config's weight, which is 0; "
                             "set one > 0 (e.g. --set loss.landmark=2e-3)")
        return loss
    return dataclasses.replace(loss, **NO_LANDMARKS)


def setting_label(renderer: str, landmarks: bool) -> str:
    """``"per_vertex + landmarks"`` or ``"per_vertex, no landmarks"``."""
    return f"{renderer} + landmarks" if landmarks else f"{renderer}, no landmarks"


def directions(modes: int = 5) -> tuple[list[tuple[str, str]], torch.Tensor]:
    """The measured directions of code space: ``[(part, entry)]`` and a ``(K, 257)`` matrix.

    Pose entries and the first ``modes`` α, δ, β modes are single code entries (one-hot
    rows); SH band ``b`` is the white light of that band, ones on its R, G and B entries.
    """
    names: list[tuple[str, str]] = []
    rows: list[torch.Tensor] = []

    def add(part: str, entry: str, indices: list[int]) -> None:
        row = torch.zeros(CODE_DIM, dtype=torch.float64)
        row[indices] = 1.0
        names.append((part, entry))
        rows.append(row)

    for part, entry, index in POSE_ENTRIES:
        add(part, entry, [index])
    for part in MODE_PARTS:
        part_slice = CODE_SLICES[part]
        for mode in range(min(modes, part_slice.stop - part_slice.start)):
            add(part, str(mode), [part_slice.start + mode])
    gamma = CODE_SLICES["gamma"].start
    for band in range(SH_BANDS):
        add("gamma", f"band {band}", [gamma + 3 * band + channel for channel in range(3)])
    return names, torch.stack(rows)


def loss_gradient(loss: Callable[[torch.Tensor], torch.Tensor], code: torch.Tensor) -> torch.Tensor:
    """``(B, 257)`` per-image gradient of ``loss`` at ``code``.

    Args:
        loss: maps ``(B, 257)`` codes to a batch mean of per-image losses (as every loss
            term of :mod:`mofa_bench.losses` is); it is multiplied by B so that each image's
            code receives the gradient of its own loss.
        code: ``(B, 257)`` codes (not changed).
    """
    code = code.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss(code) * code.shape[0], code)
    return grad.detach()


def gradient_signal(grad: torch.Tensor, error: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``(K,)`` correlation over the images of ``−grad`` with ``error`` along each row of ``basis``.

    Args:
        grad: ``(B, 257)`` per-image loss gradients.
        error: ``(B, 257)`` what each code misses (true − current).
        basis: ``(K, 257)`` directions (:func:`directions`).
    """
    basis = basis.to(torch.float64)
    return correlation(-grad.double() @ basis.T, error.double() @ basis.T)


def training_loss(decoder: MoFADecoder, batch, weights: LossWeights,
                  landmarks: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The MoFA loss of ``batch`` through ``decoder``'s renderer as a function of the codes (batch mean)."""
    targets = (batch.landmarks, batch.landmark_confidence) if landmarks else (None, None)

    def total(code: torch.Tensor) -> torch.Tensor:
        return code_loss(decoder, code, batch.images, weights, *targets)["total"]

    return total


def signal_rows(grad: torch.Tensor, error: torch.Tensor, names: list[tuple[str, str]], basis: torch.Tensor,
                resamples: int = BOOTSTRAP_RESAMPLES) -> list[dict]:
    """Rows ``{part, entry, correlation, ci_low, ci_high, n_images, mean_abs_gradient}`` per direction."""
    basis = basis.to(torch.float64)
    pushed, missed = -grad.double() @ basis.T, error.double() @ basis.T
    value = correlation(pushed, missed)
    low, high = bootstrap_interval(correlation, pushed, missed, resamples=resamples)
    size = pushed.abs().mean(0)
    return [{"part": part, "entry": entry, "correlation": float(value[k]), "ci_low": float(low[k]),
             "ci_high": float(high[k]), "n_images": int(grad.shape[0]), "mean_abs_gradient": float(size[k])}
            for k, (part, entry) in enumerate(names)]


def measure(decoder: MoFADecoder, batch, loss: LossWeights, landmarks: bool, modes: int = 5,
            resamples: int = BOOTSTRAP_RESAMPLES) -> list[dict]:
    """The signal rows of one renderer (``decoder``'s) and landmark setting at the zero code."""
    names, basis = directions(modes)
    true = batch.codes.to(decoder.model.dtype)
    code = torch.zeros_like(true)
    grad = loss_gradient(training_loss(decoder, batch, setting_loss(loss, landmarks), landmarks), code)
    return signal_rows(grad, true - code, names, basis, resamples)


def column_label(part: str, entry: str) -> str:
    """A heat map column: ``yaw``, ``x``, ``α0``, ``γ band 2`` → ``γ2``."""
    if part in ("rotation", "translation"):
        return entry
    return _SYMBOLS[part] + entry.removeprefix("band ")


def plot(frame, path: Path, title: str = "") -> Path:
    """Heat map of ``correlation``: one row per renderer × landmark setting, one column per direction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = list(dict.fromkeys(frame["setting"]))
    columns = list(dict.fromkeys(zip(frame["part"], frame["entry"])))
    table = frame.set_index(["setting", "part", "entry"])["correlation"]
    values = np.array([[table.get((row, *column), np.nan) for column in columns] for row in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(0.42 * len(columns) + 3.2, 0.5 * len(rows) + 2.0))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            value = values[i, j]
            text = "–" if np.isnan(value) else f"{value:.2f}".replace("0.", ".", 1).replace("-.", "−.")
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                    color="white" if abs(np.nan_to_num(value)) > 0.6 else "black")
    ax.set_xticks(range(len(columns)), [column_label(*c) for c in columns], fontsize=8, rotation=90)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    parts = [part for part, _ in columns]
    for j in range(1, len(columns)):
        if parts[j] != parts[j - 1] and {parts[j], parts[j - 1]} != {"rotation", "translation"}:
            ax.axvline(j - 0.5, color="black", lw=0.8)
    landmark_rows = [row.endswith("+ landmarks") for row in rows]
    for i in range(1, len(rows)):
        if landmark_rows[i] != landmark_rows[i - 1]:
            ax.axhline(i - 0.5, color="black", lw=0.8)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label="corr(−∂E/∂d, true d) over the faces")
    ax.set_title(title or "Learning signal at the mean face", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _landmark_choice(text: str) -> tuple[bool, ...]:
    choices = {"both": LANDMARK_SETTINGS, "on": (True,), "off": (False,)}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
    return choices[text]


def add_common_arguments(parser: argparse.ArgumentParser, size: int | None,
                         size_help: str = "the first N test faces (default: %(default)s)") -> None:
    """Options ``signal`` and ``fit-curves`` share: CONFIG, --size, --renderers, --landmarks, --set."""
    parser.add_argument("config", metavar="CONFIG",
                        help="train config: a packaged config's name (e.g. converge) or a YAML file")
    parser.add_argument("--size", type=int, default=size, metavar="N", help=size_help)
    parser.add_argument("--renderers", nargs="+", default=list(RENDERERS), choices=list(RENDERERS),
                        metavar="RENDERER",
                        help="renderers to compare: per_vertex, pytorch3d (hard), pytorch3d-soft (the suites' "
                             "soft setting); default: all three")
    parser.add_argument("--landmarks", type=_landmark_choice, default=LANDMARK_SETTINGS, metavar="on|off|both",
                        help="landmark settings to run (default: both)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change the config, e.g. --set camera.image_size=128 (repeatable)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose signal``."""
    add_common_arguments(parser, size=64)
    parser.add_argument("--modes", type=int, default=5, help="first α, δ and β modes (default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=BOOTSTRAP_RESAMPLES,
                        help="bootstrap resamples of the interval (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="CSV", help="tidy CSV to write")
    parser.add_argument("--figure", default=None, metavar="PNG", help="heat map PNG to write")


def renderer_decoders(decoder: MoFADecoder, names: list[str]) -> dict[str, MoFADecoder]:
    """``{label: decoder through that renderer}`` for names of :data:`RENDERERS`."""
    return {RENDERERS[name][0]: decoder.with_renderer(RENDERERS[name][1], **RENDERERS[name][2]) for name in names}


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose signal``: print (and write) the correlations of the module docstring."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder
    from mofa_bench.scoring.protocol import synthetic_test_batch

    for path, option in ((args.out, "--out"), (args.figure, "--figure")):
        if path:
            output_folder(Path(path).parent, option)
    if args.modes < 0 or args.resamples < 1:
        raise InputError("--modes must be >= 0 and --resamples >= 1")
    config, test_decoder, batch = synthetic_test_batch(args.config, args.size, args.overrides)
    setting = {"image_size": config.camera.image_size, "subdivisions": config.model.subdivisions}
    rows = []
    for landmarks in args.landmarks:
        for name, decoder in renderer_decoders(test_decoder, args.renderers).items():
            for row in measure(decoder, batch, config.loss, landmarks, args.modes, args.resamples):
                rows.append({"renderer": name, "landmarks": landmarks, "setting": setting_label(name, landmarks),
                             **row, **setting})
    frame = pd.DataFrame(rows)
    order = [setting_label(RENDERERS[r][0], lm) for lm in args.landmarks for r in args.renderers]
    columns = list(dict.fromkeys(zip(frame["part"], frame["entry"])))
    table = frame.pivot(index="setting", columns=["part", "entry"], values="correlation").reindex(
        index=order, columns=pd.MultiIndex.from_tuples(columns))
    table.columns = [column_label(*c) for c in columns]
    print(f"{len(batch.images)} test faces of {args.config} ({setting['image_size']} px, level "
          f"{setting['subdivisions']}): corr(-dE/dd, true d) at the mean face")
    print(table.round(2).to_string())
    if args.out:
        frame.drop(columns="setting").to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    if args.figure:
        plot(frame, Path(args.figure), f"Learning signal at the mean face: {len(batch.images)} test faces of "
                                       f"{Path(args.config).stem}, {setting['image_size']} px")
        print(f"wrote {args.figure}")
    return 0
