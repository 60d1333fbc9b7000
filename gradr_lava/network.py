"""Build a SLAYER CUBA-LIF network from a :class:`~gradr_lava.config.ModelConfig`.

The network is a plain sequence of lava-dl blocks (``Conv``, ``Flatten``, ``Dense``), so
lava-dl's own ``export_hdf5`` writes it and netx reads it back. Weights are always passed through
slayer's 8-bit quantization (``neuron.quantize_8bit``), in training and evaluation alike: the
forward pass computes on the weights the chip will hold.

Shapes: input spikes ``(N, F, S)`` with ``F = H * W`` pixels in C order and ``S`` time steps;
output spikes ``(N, classes, S)``. Every block delays its output by one step (slayer's
``delay_shift``, which matches Lava's one-step latency per layer).

Two engines evaluate the same blocks: ``"fast"`` (:mod:`gradr_lava.fast_cuba`, the default where
it covers every block) and ``"slayer"`` (lava-dl's own forward, the reference). Their forward
spikes are identical.
"""

from __future__ import annotations

import torch

from gradr_deploy.errors import InputError, option
from gradr_deploy.simulation import lava_compat
from gradr_lava import fast_cuba
from gradr_lava.config import ModelConfig

lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402  (needs the compat finder first)


def neuron_params(config: ModelConfig) -> dict[str, float | bool]:
    """slayer's CUBA neuron parameter dict for ``config``."""
    n = config.neuron
    return {
        "threshold": n.threshold,
        "current_decay": n.current_decay,
        "voltage_decay": n.voltage_decay,
        "tau_grad": n.tau_grad,
        "scale_grad": n.scale_grad,
        "requires_grad": False,  # decays stay fixed: they are chip parameters, not learned here
    }


def input_scale(config: ModelConfig) -> int:
    """How many times a binary spike's current one unit of intensity brings to the first layer:
    ``levels`` for direct (graded) input, 1 for rate coding (see
    ``gradr_deploy.simulation.encoding``)."""
    return config.input.levels if config.input.encoding == "direct" else 1


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class SpikingNetwork(torch.nn.Module):
    """A feed-forward CUBA-LIF network: optional conv blocks, then dense blocks.

    Args:
        config: the model description.
        image_shape: ``(H, W)`` of the single-channel input images.
        num_classes: required size of the last layer.
    """

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int], num_classes: int,
                 engine: str = "auto"):
        super().__init__()
        if config.layers[-1].features != num_classes:
            raise InputError(
                f"{config.source}: the last layer has {config.layers[-1].features} features but "
                f"the data set has {num_classes} classes"
            )
        params = neuron_params(config)
        # Direct input brings `levels` times the current of an intensity: the first layer's
        # threshold is scaled alike, so the weights keep their range on the 8-bit grid.
        first_params = {**params, "threshold": params["threshold"] * input_scale(config)}
        scale = config.training.weight_scale
        self.image_shape = tuple(image_shape)
        self.has_conv = config.layers[0].type == "conv"
        channels, height, width = 1, *image_shape
        features = height * width
        blocks: list[torch.nn.Module] = []
        for index, layer in enumerate(config.layers):
            layer_params = first_params if index == 0 else params
            if layer.type == "conv":
                blocks.append(
                    slayer.block.cuba.Conv(
                        layer_params, channels, layer.channels, layer.kernel_size,
                        stride=layer.stride, padding=layer.padding,
                        weight_scale=scale, weight_norm=False,
                    )
                )
                height = _conv_out(height, layer.kernel_size, layer.stride, layer.padding)
                width = _conv_out(width, layer.kernel_size, layer.stride, layer.padding)
                channels = layer.channels
                features = channels * height * width
                continue
            if blocks and isinstance(blocks[-1], slayer.block.cuba.Conv):
                blocks.append(slayer.block.cuba.Flatten())
            blocks.append(
                slayer.block.cuba.Dense(
                    layer_params, features, layer.features, weight_scale=scale,
                    weight_norm=False,
                )
            )
            features = layer.features
        self.blocks = torch.nn.ModuleList(blocks)
        self.engine, self.engine_note = select_engine(engine, list(self.blocks))

    @property
    def synaptic_blocks(self) -> list[torch.nn.Module]:
        """Blocks that own a synapse (the prunable layers), in order."""
        return [block for block in self.blocks if hasattr(block, "synapse")]

    @property
    def netx_input_shape(self) -> tuple[int, int, int] | None:
        """``(x, y, f) = (W, H, C)`` that netx needs for conv-first nets; None for dense nets."""
        if not self.has_conv:
            return None
        height, width = self.image_shape
        return (width, height, 1)

    def _prepare(self, spikes: torch.Tensor) -> torch.Tensor:
        if self.has_conv:
            n, _, steps = spikes.shape
            return spikes.reshape(n, 1, *self.image_shape, steps)
        return spikes

    def forward_layers(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """Output spikes of every block: a list of ``(N, ..., S)`` tensors (Flatten included)."""
        return fast_cuba.forward_blocks(list(self.blocks), self._prepare(spikes), self.engine)

    def describe_engine(self, device: torch.device) -> dict[str, object]:
        """The engine, why "auto" fell back (``note``), and on the CPU whether the fast engine's
        dense products run as int8 GEMMs (``int8_gemm``; either way the numbers are equal)."""
        found: dict[str, object] = {"name": self.engine}
        if self.engine_note:
            found["note"] = self.engine_note
        if self.engine == "fast" and torch.device(device).type == "cpu":
            found["int8_gemm"] = fast_cuba.int8_gemm_is_used()
        return found

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Input spikes ``(N, F, S)`` -> output spikes ``(N, classes, S)``."""
        return self.forward_layers(spikes)[-1]  # the other layers' outputs are views


ENGINES = ("auto", "fast", "slayer")


def select_engine(engine: str, blocks: list[torch.nn.Module]) -> tuple[str, str | None]:
    """The engine that will run ``blocks``, and a note when "auto" had to fall back to slayer.

    "fast" insists on the fast path (an unsupported block is an error naming it); "auto" takes
    it where every block is covered; "slayer" always uses lava-dl's forward.
    """
    if engine not in ENGINES:
        raise InputError(f"{option('engine')} must be one of {', '.join(ENGINES)}, got "
                         f"{engine!r}")
    if engine == "slayer":
        return "slayer", None
    reason = fast_cuba.network_unsupported_reason(blocks)
    if reason is None:
        return "fast", None
    if engine == "fast":
        raise InputError(f"{option('engine', 'fast')} does not cover this network ({reason}); "
                         f"use {option('engine', 'auto')} or slayer")
    return "slayer", f"fast path not used ({reason}): trained with slayer's forward"
