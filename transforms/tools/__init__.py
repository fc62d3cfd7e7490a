"""What people run: the ``omh`` command (``cli``), the demo, the sample files, exports and the
one-machine cluster (``cluster``). Nothing in the pipeline imports these."""
