"""PNG plots of the demo: training curves of every run and the test-mAP comparison."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..extras import agg_pyplot

plt = agg_pyplot("The demo's plots")

COLORS = {"baseline": "tab:gray", "cr": "tab:blue"}


def plot_training_curves(histories: dict[str, list[dict]], path) -> Path:
    """``histories``: run name (``"cr/seed0"``) -> ``Trainer.state.log_history``. Left: training loss;
    right: validation mAP, both against the optimizer step."""
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, history in sorted(histories.items()):
        color = COLORS.get(name.split("/")[0])
        train = [(h["step"], h["loss"]) for h in history if "loss" in h]
        evals = [(h["step"], h["eval_mAP"]) for h in history if "eval_mAP" in h]
        if train:
            ax_loss.plot(*zip(*train), label=name, color=color, alpha=0.8)
        if evals:
            ax_map.plot(*zip(*evals), marker="o", label=name, color=color, alpha=0.8)
    ax_loss.set(xlabel="step", ylabel="training loss (BCE + λ·CR)", title="Training loss", yscale="log")
    ax_map.set(xlabel="step", ylabel="mAP", title="Validation mAP")
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_comparison(test_map: dict[str, list[float]], path) -> Path:
    """Bar chart of test mAP per method (mean, with the seeds as dots and ± sample std when several)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    names = list(test_map)
    for i, name in enumerate(names):
        values = np.asarray(test_map[name], dtype=float)
        ax.bar(i, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else None, capsize=6,
               color=COLORS.get(name), alpha=0.8)
        ax.scatter(np.full(len(values), i), values, color="black", s=12, zorder=3)
        ax.text(i, values.mean(), f"{values.mean():.3f}", ha="center", va="bottom")
    ax.set_xticks(range(len(names)), [{"baseline": "baseline (λ=0)", "cr": "CR"}.get(n, n) for n in names])
    ax.set(ylabel="test mAP", title="Embedded test set")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
