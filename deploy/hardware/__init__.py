"""Hardware profiles: per-core limits, synapse encoding, chip layout, energy and timing
constants, each with its source (``profiles/*.toml``; :mod:`.profile`), and the model of Intel's
Loihi 2 compiler's constants (:mod:`.compiler_profile`). Standard library only."""
