"""What a mapping looks like to a reader: the fixed-width table, ``mapping.json`` and
``mapping.png`` (:mod:`.mapping`)."""
