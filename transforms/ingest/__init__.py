"""One file from landing to storage: ``pipeline`` runs the stages and hands their observations to
storage (``ingest_file``, ``check_file``, ``discover``); ``reports`` writes what a refused file gets;
``overlaps`` warns when a load overlaps another source's figures.

This is what the DAGs and ``omh ingest``/``omh check`` call.
"""
