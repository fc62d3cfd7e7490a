"""The lake store: what the pipeline, ``omh verify``, lineage and exports do with the lake, behind
one interface whatever holds it.

``OMH_LAKE_URL`` picks the implementation (``open_lake``):

* unset, or a path: ``FolderLake``, hive-partitioned Parquet in a folder (``storage.lake``), the
  embedded default (``$OMH_HOME/lake`` when unset);
* ``s3://bucket/prefix``: ``IcebergLake`` (``storage.iceberg_lake``), one Iceberg table on
  S3-compatible object storage whose catalog is a SQL database (the warehouse's PostgreSQL).

A leaf is the rows of one source in one (reporter_iso3, year, month) partition. Both stores
replace a load's leaves so that a reader sees the old vintage or the new one, never half.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from transforms.storage.lake import Leaf

Partition = tuple[str, int, int]


class LakeStore(Protocol):
    url: str

    def write(self, batches, source_id: str, partitions: list[Partition]) -> int:
        """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``batches``
        (Arrow record batches in the fact schema); a partition with no rows loses its leaf."""

    def scan(self) -> tuple[list[Leaf], list[str]]:
        """Every leaf with its rows, non-null values and sum of ``value`` (or its read error); and
        the names of stray files that are no leaves."""

    def read(self, source_id: str, partition: Partition):
        """The rows of one leaf as an Arrow table (partition columns included)."""

    def remove_strays(self, strays: list[str]) -> None:
        """Remove what an interrupted write left behind (``omh verify --repair``)."""

    def leaf_dataset(self, source_id: str, partition: Partition) -> dict:
        """The OpenLineage dataset (namespace, name) of one leaf."""


class FolderLake:
    """The folder lake: one Parquet file per leaf, renamed into place (``storage.lake``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = str(self.root)

    def write(self, batches, source_id: str, partitions: list[Partition]) -> int:
        from transforms.storage.lake import write_leaves

        return write_leaves(batches, self.root, source_id, partitions)

    def scan(self) -> tuple[list[Leaf], list[str]]:
        from transforms.storage.lake import scan

        leaves, strays = scan(self.root)
        return leaves, [p.relative_to(self.root).as_posix() for p in strays]

    def read(self, source_id: str, partition: Partition):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from transforms.storage.lake import leaf_path

        table = pq.read_table(leaf_path(self.root, *partition, source_id))
        reporter, year, month = partition
        n = table.num_rows
        return (
            table.append_column("reporter_iso3", pa.array([reporter] * n, pa.string()))
            .append_column("year", pa.array([int(year)] * n, pa.int32()))
            .append_column("month", pa.array([int(month)] * n, pa.int32()))
        )

    def remove_strays(self, strays: list[str]) -> None:
        for rel in strays:
            path = self.root / rel
            if path.name.startswith(".") and path.name.endswith(".tmp"):  # a writer's temporary only
                path.unlink(missing_ok=True)

    def leaf_dataset(self, source_id: str, partition: Partition) -> dict:
        from transforms.storage.lake import leaf_path

        return {"namespace": "file", "name": str(leaf_path(self.root, *partition, source_id).resolve())}


def is_object_store(url: str | None) -> bool:
    return bool(url) and str(url).startswith("s3://")


def open_lake(cfg) -> LakeStore:
    """The lake of settings ``cfg``: its ``lake_url`` (``OMH_LAKE_URL``) or the folder of its home."""
    url = getattr(cfg, "lake_url", "") or ""
    if is_object_store(url):
        from transforms.storage.iceberg_lake import IcebergLake

        return IcebergLake.from_settings(cfg)
    if "://" in url:
        raise ValueError(f"OMH_LAKE_URL {url!r}: give a folder or s3://bucket/prefix")
    return FolderLake(Path(url) if url else cfg.lake)


def as_lake(lake) -> LakeStore:
    """``lake`` itself when it is a store; a folder path as its ``FolderLake``."""
    return lake if hasattr(lake, "scan") and hasattr(lake, "write") else FolderLake(Path(lake))
