"""``python -m gradr_lava ...`` is ``gradr-lava ...``; torchrun needs this form:
``torchrun --nproc_per_node 2 -m gradr_lava train --dataset mnist ...``."""

import sys

from gradr_lava.cli import main

sys.exit(main())
