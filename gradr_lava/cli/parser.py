"""The flags of every ``gradr-lava`` command (argparse), with the checks a flag's value needs
before any work starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gradr_lava.cli import commands as handlers

EXIT_CODES = """\
exit codes:
  0    success
  1    internal error (a bug: please report it with the traceback)
  2    usage or input error (bad flag, missing or malformed file, unknown model or data set)
  3    the network does not fit the hardware budget (--max-cores / --chips)
  4    the requested target's software is not installed (e.g. lava-loihi for --target loihi2)
  129  hung up (SIGHUP); 130 interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM):
       no partial output is left, and a training run resumes from its last epoch with --resume
"""


def _number(kind: Callable[[str], float], noun: str, accept: Callable[[float], bool],
            rule: str) -> Callable[[str], float]:
    """An argparse ``type`` that parses with ``kind`` and checks ``accept``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


_positive_int = _number(int, "an integer", lambda v: v >= 1, ">= 1")
_seed = _number(int, "an integer", lambda v: 0 <= v < 2**32, "in 0 .. 2**32 - 1")
_positive_float = _number(float, "a number", lambda v: v > 0, "> 0")
_fraction = _number(float, "a number", lambda v: 0 < v <= 1, "a fraction in (0, 1]")
_open_fraction = _number(float, "a number", lambda v: 0 < v < 1, "a fraction in (0, 1)")
_time_step = _number(float, "a number", lambda v: 0 < v < 1, "in seconds, 0 < dt < 1")


def _targets(text: str) -> float | dict[int, float]:
    """``--target-connectivity``: one fraction for every layer, or ``LAYER=F,LAYER=F,...``
    (layer = index of the synaptic layer, from 0); layers not named stay dense."""
    if "=" not in text:
        return _fraction(text)
    targets: dict[int, float] = {}
    for item in text.split(","):
        layer, sep, value = item.partition("=")
        if not sep or not layer.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"{item!r} is not LAYER=FRACTION (e.g. 0=0.04,1=0.14)")
        index = int(layer)
        if index in targets:
            raise argparse.ArgumentTypeError(f"layer {index} is given twice")
        targets[index] = _fraction(value.strip())
    return targets


def _ramp(text: str) -> tuple[float, float]:
    """``--prune-ramp START,END``: fractions of training, 0 <= START < END <= 1."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not START,END (e.g. 0,0.5)")
    start, end = (_number(float, "a number", lambda v: 0 <= v <= 1, "in [0, 1]")(p.strip())
                  for p in parts)
    if not start < end:
        raise argparse.ArgumentTypeError(f"START must be below END, got {text!r}")
    return start, end


def _add_data_flags(parser: argparse.ArgumentParser, help_text: str, required: bool) -> None:
    parser.add_argument("--dataset", choices=("digits", "mnist"), required=required,
                        help=help_text)
    parser.add_argument("--data-dir", type=Path,
                        help="directory holding the MNIST IDX files (needed for mnist)")
    parser.add_argument("--download", action="store_true",
                        help="download missing MNIST files into --data-dir (checksum-verified)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradr-lava")
    except PackageNotFoundError:  # a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradr-lava",
        description="Train pruned spiking networks with lava-dl, export them to netx HDF5, "
                    "map them onto Loihi cores and run them in Lava.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gradr-lava {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a SLAYER network and export it to netx HDF5",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_flags(train, "data set to train on", required=True)
    train.add_argument("--model", help="model config: a name from models/ (digits-mlp, "
                       "digits-conv, mnist-2fc) or a .toml path; default per data set")
    train.add_argument("--epochs", type=_positive_int, help="override the config's epochs")
    train.add_argument("--seed", type=_seed, default=0,
                       help="random seed, 0 .. 2**32 - 1 (default 0)")
    train.add_argument("--out", type=Path, required=True, metavar="RUN_DIR",
                       help="run directory: checkpoint.pt, model.net, metrics.json, PNG")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in RUN_DIR from its last checkpoint")
    prune = train.add_argument_group("pruning while training")
    prune.add_argument("--prune", choices=("none", "gradr", "stds", "deepr", "magnitude"),
                       default="none", help="gradr: Gradient Rewiring (Chen et al. 2021); stds: "
                       "its successor, a scheduled soft threshold on free-signed weights (Chen "
                       "et al. 2022); deepr: Deep R (Bellec et al. 2018); magnitude: gradual "
                       "magnitude pruning")
    prune.add_argument("--target-connectivity", type=_targets, metavar="FRACTION",
                       help="fraction of weights left nonzero at the end, per layer (e.g. "
                       "0.05), or as LAYER=FRACTION,... (e.g. 0=0.04,1=0.14; others stay "
                       "dense). Grad R's schedule mode (the default) reaches it in nonzero "
                       "8-bit weights; magnitude and deepr keep that many weights in float, "
                       "of which 8-bit rounding may zero a few more; with --alpha (paper mode) "
                       "it only sets the prior's centre and the result depends on --alpha and "
                       "the epochs")
    prune.add_argument("--alpha", type=_positive_float,
                       help="Grad R paper mode: the Laplace prior's strength (the reference "
                       "uses 0.06 on MNIST 2FC); larger prunes more")
    prune.add_argument("--gradr-mode", choices=("paper", "schedule"),
                       help="Grad R: schedule (reaches --target-connectivity per layer "
                       "exactly; the default without --alpha) or paper (the reference's "
                       "prior; the default with --alpha)")
    prune.add_argument("--gradr-count", choices=("deployed", "float"),
                       help="Grad R schedule mode: count weights nonzero after 8-bit rounding "
                       "(deployed, the default: the target is the chip's connectivity) or "
                       "nonzero in float (the paper's count)")
    prune.add_argument("--gradr-shift", choices=("all", "crossing"),
                       help="Grad R schedule mode: the shift that holds the count moves every "
                       "theta (all, the default: how the paper's prior acts, shrinking the kept "
                       "weights too) or only the connections that leave or regrow (crossing: "
                       "kept weights keep their size)")
    prune.add_argument("--gradr-finetune", type=_open_fraction, metavar="FRACTION",
                       help="Grad R: spend this final fraction of training (e.g. 0.25) "
                       "fine-tuning the frozen 8-bit topology with the prior off (not in the "
                       "paper; magnitude pruning's fine-tuning phase, given to Grad R)")
    prune.add_argument("--prune-ramp", type=_ramp, metavar="START,END",
                       help="fractions of training over which connectivity ramps down to the "
                       "target (cubic; magnitude, stds, Grad R schedule mode; default 0,0.75); "
                       "the rest trains the final topology. With a cosine learning rate an "
                       "earlier end (0,0.5) leaves it a higher rate (docs/results.md, "
                       "section 6)")
    prune.add_argument("--prune-idle-first", action="store_true",
                       help="magnitude: at every mask update drop first the synapses that "
                       "cannot change an output spike (into hidden neurons with no outgoing "
                       "synapse left, out of neurons with no input left), so the budget goes "
                       "to live neurons; Grad R schedule mode: push such connections out "
                       "before every shift; needs a chain of dense layers (docs/rewiring.md)")
    fit = train.add_argument_group("training to a core budget (hardware-aware rewiring)")
    fit.add_argument("--fit-cores", type=_positive_int, metavar="N",
                     help="derive per-layer connectivity targets so the network fits N cores, "
                     "and train with Grad R toward them (exit 3 if the result does not fit)")
    fit.add_argument("--fit-chips", type=_positive_int, metavar="N",
                     help="as --fit-cores, with the cores of N chips")
    fit.add_argument("--hardware", default="loihi2", metavar="PROFILE",
                     help="hardware profile for --fit-cores: loihi1, loihi2, loihi2-brief or a "
                     "TOML file")
    fit.add_argument("--override", "--set", action="append", metavar="KEY=VALUE",
                     help="override a profile constant for --fit-cores, e.g. --override "
                     "count_zero_weights=false (repeatable; --set is the same)")
    fit.add_argument("--budget-allocation", choices=("budget-aware", "uniform"),
                     default="budget-aware", help="split the budget by layer size and fan-in "
                     "(default), or one connectivity for all layers (baseline)")
    speed = train.add_argument_group("speed")
    speed.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where to train: auto takes a GPU if torch sees one (default "
                            "auto); under torchrun, rank r uses GPU LOCAL_RANK")
    speed.add_argument("--engine", choices=("auto", "fast", "slayer"), default="auto",
                       help="forward/backward implementation: fast (gradr-lava's, identical "
                            "spikes, several times faster), slayer (lava-dl's own), auto = fast "
                            "where it covers every block, else slayer (default auto)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=handlers.cmd_train)

    deploy = commands.add_parser(
        "deploy", help="run a netx HDF5 network in Lava and compare it with PyTorch",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deploy.add_argument("model", type=Path, metavar="MODEL.net", help="netx HDF5 file")
    deploy.add_argument("--target", choices=("lava-sim", "loihi2"), required=True,
                        help="lava-sim: Lava's CPU simulator; loihi2: hardware (lava-loihi)")
    _add_data_flags(deploy, "test data set (default: the one recorded in the file)",
                    required=False)
    deploy.add_argument("--samples", type=_positive_int,
                        help="number of test samples (default: the whole test split)")
    deploy.add_argument("--inputs", type=Path, metavar="FILE.npy",
                        help="run on your own input instead of a data set: a dense array "
                        "(N, features, steps) or (features, steps) of 0/1 spikes or integer "
                        "payloads, or lava-dl numpy events (x, c, t) / (x, y, c, t) in ms; "
                        "reports agreement, activity, cores and energy, no accuracy")
    deploy.add_argument("--time-steps", type=_positive_int,
                        help="presentation steps, only for netx files not written by gradr-lava "
                        "(with --inputs events: the steps per sample)")
    deploy.add_argument("--out", type=Path, metavar="DIR",
                        help="directory for deploy.json (default: the model's directory)")
    _add_hardware_flags(deploy)
    deploy.add_argument("--save-spikes", action="store_true",
                        help="also write spikes.npz: each sample's input spikes as presented "
                        "to Lava (drain steps included) and its output spikes from Lava")
    deploy.add_argument("--copies", type=_positive_int, metavar="K",
                        help="network copies side by side in one Lava graph (default: 32, or "
                        "64 for networks under 25%% connectivity; 1 = the plain network)")
    deploy.add_argument("--quiet", action="store_true", help="no progress bar")
    deploy.set_defaults(handler=handlers.cmd_deploy)

    mapper = commands.add_parser(
        "map", help="map a netx HDF5 network onto Loihi cores and check a core budget",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mapper.add_argument("model", type=Path, metavar="MODEL.net",
                        help="netx HDF5 file, or a NIR graph (.nir, e.g. from snnTorch's "
                        "export_to_nir)")
    _add_hardware_flags(mapper)
    mapper.add_argument("--out", type=Path, metavar="DIR",
                        help="directory for mapping.json and mapping.png (default: the model's)")
    mapper.add_argument("--refine-bounds", action="store_true",
                        help="tighten the per-layer lower bounds on the cores (seconds for large "
                        "layers) and say why any gap to the cores found remains")
    mapper.set_defaults(handler=handlers.cmd_map)

    stripper = commands.add_parser(
        "strip-idle", help="copy a netx network without the synapses that cannot change any "
        "output spike (the ones map warns about)", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="In chains of dense layers, a synapse into a neuron with no path to the "
        "output layer, or out of a neuron that never spikes (no input, no bias), changes no "
        "output spike. This writes OUT.net with those weights set to 0 and everything else "
        "copied unchanged.",
    )
    stripper.add_argument("model", type=Path, metavar="MODEL.net", help="netx HDF5 file")
    stripper.add_argument("out", type=Path, metavar="OUT.net", help="netx file to write")
    stripper.set_defaults(handler=handlers.cmd_strip_idle)

    exporter = commands.add_parser(
        "export-nir", help="write a netx network as a NIR graph (for snnTorch, Norse, ...)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exporter.add_argument("model", type=Path, metavar="MODEL.net", help="netx HDF5 file")
    exporter.add_argument("out", type=Path, metavar="OUT.nir", help="NIR file to write")
    exporter.add_argument("--dt", type=_time_step, default=1e-4, metavar="SECONDS",
                          help="seconds per time step for NIR's time constants (default "
                          "1e-4, the step snnTorch's NIR import assumes)")
    exporter.set_defaults(handler=handlers.cmd_export_nir)

    importer = commands.add_parser(
        "import-nir", help="write a NIR graph as a netx network (to map, deploy, run in Lava)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importer.add_argument("graph", type=Path, metavar="GRAPH.nir", help="NIR file")
    importer.add_argument("out", type=Path, metavar="OUT.net", help="netx file to write")
    importer.add_argument("--dt", type=_time_step, metavar="SECONDS",
                          help="seconds per time step (default: the graph's dt metadata, "
                          "else 1e-4)")
    importer.set_defaults(handler=handlers.cmd_import_nir)

    setup = commands.add_parser(
        "setup-lava", help="install lava-nc 0.10.0 and lava-dl 0.6.0 into this environment "
        "(once, after pip install gradr-lava)", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="pip cannot install Lava on Python 3.11 (its wheels declare Python < 3.11 "
        "and a CUDA torch < 2.4): this installs the two wheels without their declared "
        "dependencies (the real ones come with gradr-lava), adds a start-up hook so that "
        "`import lava...` works in any script of the environment, and checks the imports.",
    )
    setup.add_argument("--pip-arg", dest="pip_args", action="append", metavar="ARG",
                       help="pass ARG to pip (repeatable), e.g. --pip-arg=--index-url=URL")
    setup.set_defaults(handler=handlers.cmd_setup_lava)
    return parser


def _add_hardware_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hardware")
    group.add_argument("--hardware", default="loihi2", metavar="PROFILE",
                       help="hardware profile: loihi2 (Intel's compiler, modelled), loihi2-brief, "
                       "loihi1 or a TOML file (default loihi2)")
    group.add_argument("--override", "--set", action="append", metavar="KEY=VALUE",
                       help="override a profile constant, e.g. --override synop_pj=27.1 "
                       "(repeatable; --set is the same)")
    group.add_argument("--max-cores", type=_positive_int, metavar="N",
                       help="fail with exit code 3 if the network needs more than N cores")
    group.add_argument("--chips", type=_positive_int, metavar="N",
                       help="fail with exit code 3 if the network needs more than N chips")
