"""What each epoch records in ``metrics.json``'s history, and the line it prints: connectivity
columns, per-layer shapes and warnings about an epoch that trained nothing."""

from __future__ import annotations

from typing import Any

from gradr_deploy.errors import option
from gradr_lava.losses import silent_loss
from gradr_lava.network import SpikingNetwork


def health_warnings(row: dict[str, Any], history: list[dict[str, Any]],
                    num_classes: int, loss: str = "cross_entropy") -> list[str]:
    """Warnings about an epoch that trained nothing: a silent output layer (no gradient
    reaches the network through it) or a loss stuck at a silent output layer's value
    (``loss``: the config's label loss)."""
    warnings = []
    epoch, chance = row["epoch"], silent_loss(loss, num_classes)
    if row["firing_rates"] and row["firing_rates"][-1] == 0.0:
        warnings.append(
            f"epoch {epoch}: the output layer fired no spike on the test set, so the "
            "loss cannot improve through it (too few connections, or weights too small): "
            f"prune more slowly (more {option('epochs')}, a higher "
            f"{option('target_connectivity')}) or raise "
            "weight_scale in the model config")
    if abs(row["loss"] - chance) < 1e-3:
        previous = history[-1]["loss"] if history else None
        if previous is None or abs(previous - row["loss"]) < 1e-3:
            where = (f"ln {num_classes} = {chance:.4f}" if loss == "cross_entropy"
                     else f"1/{num_classes} = {chance:.4f}")
            warnings.append(f"epoch {epoch}: the training loss {row['loss']:.4f} is at "
                            f"chance ({where}, as if no output neuron fired) and not "
                            "moving")
    return warnings


def layer_shapes(network: SpikingNetwork) -> list[dict[str, Any]]:
    """Per block: type, weight shape and count of prunable weights."""
    rows = []
    for index, block in enumerate(network.blocks):
        row: dict[str, Any] = {"index": index, "type": type(block).__name__.lower()}
        if hasattr(block, "synapse"):
            weight = block.synapse.weight
            row["weight_shape"] = list(weight.shape)
            row["weights"] = int(weight.numel())
        rows.append(row)
    return rows


def connectivity_columns(stats: dict[str, Any]) -> dict[str, Any]:
    """The pruner's per-epoch statistics, nested, plus the headline connectivity figures:
    ``connectivity`` counts nonzero 8-bit weights (what is exported and deployed),
    ``connectivity_float`` nonzero float weights (the paper's definition)."""
    total = stats.get("total", {})
    return {
        "connectivity": total.get("connectivity_quantized"),
        "connectivity_float": total.get("connectivity"),
        "rewiring": stats,
    }


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']:>3}/{epochs}  loss {row['loss']:.4f}  "
            f"train {row['train_accuracy']:.4f}  test {row['test_accuracy']:.4f}  "
            f"{row['seconds']:.1f}s")
    if row.get("connectivity") is not None:
        text += f"  connectivity {100 * row['connectivity']:.2f}%"
    return text
