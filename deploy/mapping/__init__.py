"""Map a netx network onto neuromorphic cores under per-core limits.

Every layer's neurons are split into contiguous runs, one per core, in a fixed order (dense:
as stored; conv and 3-D input layers: position-major ``(y, x, channel)`` so that a core holds
whole receptive-field neighbourhoods). Each core must satisfy four limits of the profile:

- neurons (compartments) per core;
- input axons: the presynaptic neurons with at least one nonzero synapse into the core;
- output axons: for each neuron of the core, the number of cores of the next layer that read it
  (one axon per destination core; layers are therefore mapped last to first);
- synapse memory in bits, nengo-loihi's cost model: per input axon the core's synapses form
  blocks of at most ``synapses_per_block``, each costing ``synapses * bits + header`` rounded up
  to a memory word; ``bits`` = weight bits (as netx derives them from the stored weights) +
  delay bits, plus index bits in the sparse encoding. The dense encoding stores one weight for
  every compartment from the axon's first to its last target in the core, zeros included (an
  axon's synapse-map entry carries a compartment base). Each axon uses the cheaper encoding.

The packing is greedy: each core takes the longest run that fits (binary search on one
vectorised cost evaluation), which is optimal for the order; :func:`map_file` also tries two
other orders for dense layers. Per layer the result reports a proven lower bound on the cores
:class:`~gradr_deploy.mapping.bounds.LayerBounds`: the counting bounds of
:func:`~gradr_deploy.mapping.bounds.lower_bounds`, refined on request by
:mod:`gradr_deploy.mapping.lower_bound`. Conv layers are costed synapse by synapse (no weight
sharing), which is conservative for hardware that shares conv kernels.

The stages, each a module: :mod:`~gradr_deploy.mapping.result` (what a mapping is),
:mod:`~gradr_deploy.mapping.connectivity` (CSR of a layer's synapses),
:mod:`~gradr_deploy.mapping.cost` (synapse-memory cost), :mod:`~gradr_deploy.mapping.partition`
(packing and neuron orders), :mod:`~gradr_deploy.mapping.bounds` (lower bounds),
:mod:`~gradr_deploy.mapping.compiler_model` / :mod:`~gradr_deploy.mapping.compiler_mapping`
(Intel's Loihi 2 compiler, modelled), :mod:`~gradr_deploy.mapping.mapper` (the whole network) and
:mod:`~gradr_deploy.mapping.budget` (does it fit N cores).
"""

from gradr_deploy.mapping.bounds import LayerBounds, lower_bounds
from gradr_deploy.mapping.connectivity import conv_connectivity, dense_connectivity, neuron_order
from gradr_deploy.mapping.cost import block_bits, index_bits
from gradr_deploy.mapping.mapper import map_file, map_network
from gradr_deploy.mapping.partition import axon_synapse_bits, partition, run_cost
from gradr_deploy.mapping.result import RESOURCES, Connectivity, LayerMapping, NetworkMapping

__all__ = ["RESOURCES", "Connectivity", "LayerBounds", "LayerMapping", "NetworkMapping",
           "axon_synapse_bits", "block_bits", "conv_connectivity", "dense_connectivity",
           "index_bits", "lower_bounds", "map_file", "map_network", "neuron_order", "partition",
           "run_cost"]
