"""``python -m gradr_lava ...`` is ``gradr-lava ...``; torchrun needs this form:
``torchrun --nproc_per_node 2 -m gradr_lava train --dataset mnist ...``."""

import os
import sys

from gradr_lava.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # Under torchrun, leave without interpreter finalization: every file is written and the
    # process group destroyed by now, but gloo's C++ threads can still hold tensors whose
    # destruction during finalization aborts the process (SIGABRT, "terminate called without
    # an active exception"; seen once in a loaded CI run here, see pytorch/pytorch#179291),
    # which torchrun would report as a failed rank.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
