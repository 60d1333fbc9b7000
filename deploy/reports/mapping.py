"""Human-readable mapping reports: a per-layer table, ``mapping.json`` and ``mapping.png``.

The table mirrors the per-layer tables Intel's partitioner prints in lava-dl's tutorials::

    Layer  Type     Neurons  Synapses  AxonIn  SynMem (KiB)  Cores  Limit           LB  Cores/LB
        1  conv       76032   1913472   63276        2667.6     14  synapse_memory  10      1.40

``AxonIn`` sums the input axons of the layer's cores, ``SynMem`` their synapse memory,
``Limit`` is the resource closest to its per-core limit, ``LB`` the proven lower bound on cores
and ``Cores/LB`` their ratio. Under the table, a note for every layer more than 10% above its
bound says why the bound cannot close the gap, with the numbers (also ``lower_bound_note`` in
``mapping.json``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from gradr_deploy.atomic import atomic_path, write_json
from gradr_deploy.errors import option
from gradr_deploy.mapping import NetworkMapping

COLUMNS = (
    "Layer", "Type", "Neurons", "Synapses", "AxonIn", "SynMem (KiB)", "Cores", "Limit", "LB",
    "Cores/LB",
)  # fmt: skip
NOTE_RATIO = 1.1  # the table notes layers whose cores exceed 1.1 x the lower bound
KIB_BITS = 8 * 1024


def format_table(mapping: NetworkMapping) -> str:
    """The mapping as a fixed-width text table with a totals line and the chips needed.

    For a profile with a compiler model the table is Intel's layout (:func:`format_compiler`).
    """
    if mapping.hardware.compiler is not None:
        return format_compiler(mapping)
    rows = []
    for layer in mapping.layers:
        placed = layer.cores > 0
        rows.append(
            (
                str(layer.index),
                layer.kind,
                str(layer.neurons) if placed else "-",
                str(layer.synapses) if placed else "-",
                str(int(layer.core_input_axons.sum())) if placed else "-",
                f"{layer.core_synapse_bits.sum() / KIB_BITS:.1f}" if placed else "-",
                str(layer.cores),
                layer.limiting if placed else "-",
                str(layer.lower_bound) if placed else "-",
                f"{layer.ratio:.2f}" if placed else "-",
            )
        )
    total_bits = sum(int(layer.core_synapse_bits.sum()) for layer in mapping.layers)
    rows.append(
        (
            "total",
            "",
            str(sum(layer.neurons for layer in mapping.layers)),
            str(sum(layer.synapses for layer in mapping.layers)),
            str(sum(int(layer.core_input_axons.sum()) for layer in mapping.layers)),
            f"{total_bits / KIB_BITS:.1f}",
            str(mapping.total_cores),
            "",
            str(mapping.lower_bound_cores),
            f"{mapping.total_cores / max(mapping.lower_bound_cores, 1):.2f}",
        )
    )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    left = {1, 7}  # text columns

    def line(cells: tuple[str, ...]) -> str:
        padded = (
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = "-" * len(line(COLUMNS))
    hw = mapping.hardware
    body = [line(COLUMNS), rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1])]
    body.append(
        f"{mapping.total_cores} cores on {hw.name} ({hw.cores_per_chip} cores per chip): "
        f"{mapping.chips} chip(s); lower bound {mapping.lower_bound_cores} cores"
    )
    body.extend(
        f"note: layer {layer.index}: {layer.bound_note}"
        for layer in mapping.layers
        if layer.cores > NOTE_RATIO * layer.lower_bound and layer.bound_note
    )
    body.extend(f"warning: {w}" for w in mapping.warnings)
    return "\n".join(body)


def _cell(value: float, capacity: int | None, percent: bool) -> str:
    if math.isnan(value):
        return "-"
    if percent and capacity:
        return f"{100 * value / capacity:.2f}%"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def compiler_rows(mapping: NetworkMapping, percent: bool) -> list[tuple[str, ...]]:
    """Intel's printout rows (one per placed layer, in layer order) as text cells."""
    from gradr_deploy.mapping.compiler_mapping import capacity
    from gradr_deploy.mapping.compiler_model import COLUMNS as USE_COLUMNS
    from gradr_deploy.mapping.compiler_model import total_fraction

    model = mapping.hardware.compiler
    assert model is not None
    cap = capacity(mapping.hardware)
    rows = []
    for layer in mapping.layers:
        compiled = layer.compiled
        if compiled is None:
            continue
        row = compiled.row(model.release.row_statistic)
        total = total_fraction(row, cap, model)
        tile = "" if compiled.tile is None else "Conv({}, {}, {})".format(*compiled.tile)
        rows.append((
            str(layer.index), layer.kind,
            *(_cell(row[c], cap.of(c), percent) for c in USE_COLUMNS),
            "-" if math.isnan(total) else f"{100 * total:.2f}%",
            str(compiled.cores), str(compiled.best_cores), str(compiled.lower_bound), tile,
        ))
    return rows


COMPILER_COLUMNS = ("Layer", "Type", "AxonIn", "NeuronGr", "Neurons", "Synapses", "AxonMap",
                    "AxonMem", "Total", "Cores", "Best", "LB", "Tile")


def format_compiler(mapping: NetworkMapping) -> str:
    """Intel's per-core table (percent and absolute units), cores per layer and the totals.

    ``Cores`` is the modelled compiler's, ``Best`` the best partition under the same cost model,
    ``LB`` a proven lower bound. A row is the release's printed statistic: the largest core
    (2024-04) or the layer's totals per core (2023 releases); conv rows show one full tile.
    """
    model = mapping.hardware.compiler
    assert model is not None
    blocks = []
    for percent in (True, False):
        rows = compiler_rows(mapping, percent)
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COMPILER_COLUMNS)]

        def line(cells: tuple[str, ...], widths: list[int] = widths) -> str:
            return "  ".join(c.ljust(w) if i in (1, 12) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        rule = "-" * len(line(COMPILER_COLUMNS))
        title = ("per core, % of capacity" if percent
                 else "per core, absolute (Synapses in SynMem units)")
        blocks.append("\n".join([f"Intel compiler model, release {model.release.name}: "
                                  f"{title}", line(COMPILER_COLUMNS), rule,
                                  *(line(r) for r in rows), rule]))
    others = ", ".join(f"{name}: {cores}" for name, cores in mapping.release_cores.items()
                       if name != model.release.name)
    hw = mapping.hardware
    summary = [
        f"Intel's compiler (model, release {model.release.name}): {mapping.total_cores} cores; "
        f"best partition under the same cost model: {mapping.best_partition_cores}; "
        f"lower bound {mapping.lower_bound_cores}",
        f"other compiler releases: {others} cores ({option('override', {'release': 'NAME'})})"
        if others else "",
        f"{mapping.total_cores} cores on {hw.name} ({hw.cores_per_chip} cores per chip): "
        f"{mapping.chips} chip(s)",
    ]
    body = ["\n\n".join(blocks), *(s for s in summary if s)]
    body.extend(f"warning: {w}" for w in mapping.warnings)
    return "\n".join(body)


def write_mapping(mapping: NetworkMapping, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``out_dir/mapping.json`` and ``out_dir/mapping.png`` atomically; return both paths.

    The JSON has top-level keys ``total_cores``, ``chips``, ``lower_bound_cores``, ``layers``
    and ``hardware`` (see :meth:`NetworkMapping.to_dict`). The PNG shows cores (with lower
    bounds) and synapse memory per layer.
    """
    out = Path(out_dir)
    json_path = write_json(out / "mapping.json", mapping.to_dict())
    png_path = out / "mapping.png"
    with atomic_path(png_path) as tmp:
        _plot(mapping, tmp)
    return json_path, png_path


def _plot(mapping: NetworkMapping, path: Path) -> None:
    """Cores per layer (integer axis, lower bounds) and each layer's synapse memory per core
    (fullest and mean core) against the profile's per-core capacity; every netx layer is on
    the axis, layers without cores (flatten) marked so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    layers = list(mapping.layers)
    x = list(range(len(layers)))
    many = len(layers) > 6  # rotated one-line labels, or they overlap
    labels = [f"{layer.index} {layer.kind}" if many else f"{layer.index}\n{layer.kind}"
              for layer in layers]
    width = max(11.0, 4.0 + 0.45 * len(layers))
    fig, (ax_cores, ax_mem) = plt.subplots(1, 2, figsize=(width, 4.6), constrained_layout=True)
    ax_cores.bar(x, [layer.cores for layer in layers], color="tab:blue", label="cores")
    placed = [k for k, layer in enumerate(layers) if layer.cores]
    ax_cores.scatter(placed, [layers[k].lower_bound for k in placed], color="black", marker="_",
                     s=300, zorder=3, label="lower bound")
    for k, layer in enumerate(layers):
        if not layer.cores:
            ax_cores.annotate("no cores", (k, 0), xytext=(0, 3), textcoords="offset points",
                              ha="center", va="bottom", rotation=90, fontsize=8, color="gray")
    name = Path(mapping.source).name
    ax_cores.set_title(f"{name}: {mapping.total_cores} cores on {mapping.hardware.name}")
    ax_cores.set_ylabel("cores")
    ax_cores.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_cores.set_ylim(0, max([1] + [layer.cores for layer in layers]) * 1.18)  # legend room
    ax_cores.legend()
    capacity = mapping.hardware.synapse_memory_bits_per_core / KIB_BITS
    fullest = [layer.core_synapse_bits.max() / KIB_BITS if layer.cores else 0.0
               for layer in layers]
    mean = [layer.core_synapse_bits.mean() / KIB_BITS if layer.cores else 0.0
            for layer in layers]
    ax_mem.bar(x, fullest, color="tab:green", label="fullest core")
    ax_mem.scatter(x, mean, color="black", marker="_", s=300, zorder=3, label="mean core")
    ax_mem.axhline(capacity, color="tab:red", linestyle="--",
                   label=f"per-core capacity ({capacity:.0f} KiB)")
    ax_mem.set_ylim(0, capacity * 1.12)
    ax_mem.set_title(f"Synapse memory per core ({mapping.hardware.name})")
    ax_mem.set_ylabel("KiB per core")
    ax_mem.legend(loc="upper right", fontsize=8)
    for ax in (ax_cores, ax_mem):
        ax.set_xticks(x, labels, rotation=60 if many else 0, ha="right" if many else "center",
                      fontsize=8 if many else 10)
        ax.set_xlabel("layer (index in the netx file, type)")
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
