"""Running a netx network: Lava's Python 3.11 compat shim and start-up hook
(:mod:`.lava_compat`, :mod:`.lava_startup`, :mod:`.lava_setup`), the Lava runner
(:mod:`.lava_sim` -> worker process -> :mod:`.lava_graph`), the exact PyTorch reference on
Lava's integer grid (:mod:`.lava_exact`), the training forward rebuilt from the file
(:mod:`.reference`), and what is presented (:mod:`.encoding`, :mod:`.stimulus`,
:mod:`.inputs`).

Importing this package imports nothing (the start-up hook imports it in every interpreter);
torch and Lava load only when a run starts.
"""
