"""Where figures are kept: the warehouse (``warehouse``: schema, migrations, the vintage merge, DuckDB
and PostgreSQL), its one-writer lock (``writelock``), the Parquet lake (``lake``), the check that
both agree (``verify``), the "already loaded?" lookup (``manifest``) and the alert log.

Storage knows nothing of how a file is read or harmonized.
"""
