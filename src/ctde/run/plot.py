"""Learning curves from run folders: mean over seeds with a min-max band."""

from __future__ import annotations

import csv
import os

import numpy as np


def read_curve(run_dir: str, metric: str):
    """(env_steps [P], values [seeds, P]) of ``metric`` in ``run_dir/metrics.csv``."""
    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} has no metrics.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or metric not in rows[0]:
        valid = ", ".join(k for k in (rows[0] if rows else {}) if k not in ("seed", "env_steps"))
        raise ValueError(f"{run_dir}: no metric {metric!r}. Valid metrics: {valid}")
    steps = sorted({int(r["env_steps"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    values = np.full((len(seeds), len(steps)), np.nan)
    for r in rows:
        if r[metric] != "":
            values[seeds.index(int(r["seed"])), steps.index(int(r["env_steps"]))] = float(r[metric])
    return np.array(steps), values


def plot_runs(run_dirs: list[str], out: str, metric: str = "return_mean",
              labels: list[str] | None = None, title: str | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctde.run.checkpoint import atomic_write

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, run in enumerate(run_dirs):
        steps, values = read_curve(run, metric)
        label = labels[i] if labels else os.path.basename(os.path.normpath(run))
        mean = np.nanmean(values, axis=0)
        ax.plot(steps, mean, label=f"{label} ({values.shape[0]} seeds)")
        ax.fill_between(steps, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(out)[1][1:] or "png", dpi=110)
    plt.close(fig)
    atomic_write(out, buffer.getvalue())
    return out
