"""PNG figures of a training run, written atomically with matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradr_deploy.atomic import atomic_path


def plot_training_curves(history: Sequence[dict[str, Any]], path: Path,
                         title: str = "", pruned: bool = True) -> Path:
    """Loss, accuracy (train, test) and deployed connectivity per epoch.

    The connectivity axis always spans 0-100%: a dense run's drift of a few tenths of a
    percent (8-bit rounding of weights that grow) must not look like pruning.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    has_connectivity = any(row.get("connectivity") is not None for row in history)
    columns = 3 if has_connectivity else 2
    fig, axes = plt.subplots(1, columns, figsize=(4.2 * columns, 3.4))
    axes[0].plot(epochs, [row["loss"] for row in history], marker="o")
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    axes[1].plot(epochs, [row["train_accuracy"] for row in history], marker="o", label="train")
    axes[1].plot(epochs, [row["test_accuracy"] for row in history], marker="o", label="test")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy (quantized forward)")
    axes[1].legend()
    if has_connectivity:
        axes[2].plot(epochs, [100 * row["connectivity"] for row in history], marker="o")
        axes[2].set(xlabel="epoch", ylabel="connectivity (%)", ylim=(0, 100),
                    title="nonzero 8-bit weights" + ("" if pruned else " (not pruned)"))
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
