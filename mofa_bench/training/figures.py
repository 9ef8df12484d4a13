"""Figures of a run, drawn from its CSV files alone (reproducible from the run directory)."""

from __future__ import annotations

from pathlib import Path

_VAL_LABELS = {
    "photometric": "photometric error (RGB distance)",
    "geometric_mm": "geometric error, posed (mm)",
    "geometric_model_mm": "geometric error, model space (mm)",
    "landmark_px": "landmark error (px)",
}


#: metrics.csv columns that are not loss terms.
_NOT_TERMS = ("step", "loss", "samples_per_s", "skipped", "time_s")


def plot_run_curves(run_dir: str | Path) -> list[Path]:
    """Write ``figures/loss_curve.png`` and ``figures/validation_curve.png`` (when data exist)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    run_dir = Path(run_dir)
    out_dir = run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        df = pd.read_csv(metrics)
        # Every method logs its own terms; MoFA's are photo, landmark and reg.
        terms = [c for c in df.columns if c not in _NOT_TERMS and df[c].notna().any()]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        axes[0].plot(df["step"], df["loss"], label="total")
        for term in terms:
            if term != "reg":
                axes[0].plot(df["step"], df[term], label=f"E_{term}", alpha=0.7)
        axes[0].set_xlabel("step")
        axes[0].set_ylabel("training loss")
        axes[0].legend()
        if "reg" in terms:
            axes[1].plot(df["step"], df["reg"])
            axes[1].set_ylabel("E_reg")
        else:
            axes[1].plot(df["step"], df["samples_per_s"])
            axes[1].set_ylabel("samples/s")
        axes[1].set_xlabel("step")
        fig.suptitle(run_dir.name)
        fig.tight_layout()
        path = out_dir / "loss_curve.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    validation = run_dir / "validation.csv"
    if validation.exists():
        df = pd.read_csv(validation)
        columns = [c for c in _VAL_LABELS if c in df.columns and df[c].notna().any()]
        if columns:
            fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.4), squeeze=False)
            for ax, column in zip(axes[0], columns):
                ax.plot(df["step"], df[column], marker="o")
                ax.set_xlabel("step")
                ax.set_ylabel(_VAL_LABELS[column])
            fig.suptitle(f"{run_dir.name}: validation")
            fig.tight_layout()
            path = out_dir / "validation_curve.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written
