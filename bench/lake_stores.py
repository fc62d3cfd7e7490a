"""The folder lake against the Iceberg lake on object storage: the same sample ingest and ``omh verify``.

For each store, in a child process of its own (same imports, nothing cached across stores): the
2024 sample file of every member state (``tools.samples``) ingested one by one into a fresh
embedded home (``ingest_s``; ``lake_write_s`` is the lake step alone, as the pipeline times it),
then ``omh verify`` (``storage.verify.verify``) timed alone. The Iceberg lake runs on
a local moto server (``.venv-moto``) with its SQL catalog in a PostgreSQL schema of its own (dropped
afterwards). Writes ``bench/results/lake_stores.json``.

    .venv/bin/python bench/lake_stores.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
PG_URL = os.environ.get("OMH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def one_store(home: Path) -> dict:
    """In the child: ingest the samples, then verify; the timings."""
    import logging
    import re

    from transforms.config import settings
    from transforms.contracts.loading import load_contracts
    from transforms.ingest.landing import source_files
    from transforms.ingest.pipeline import ingest_file
    from transforms.storage.verify import verify
    from transforms.tools.samples import YEAR, write_samples

    lake_write = []  # seconds of each file's lake write (the pipeline's own timing of the step)

    class LakeTimes(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = re.search(r": lake write took ([0-9.]+) s", record.getMessage())
            if found:
                lake_write.append(float(found.group(1)))

    pipeline_log = logging.getLogger("omh.pipeline")
    pipeline_log.setLevel(logging.INFO)
    pipeline_log.addHandler(LakeTimes())
    cfg = settings(home).ensure()
    write_samples(cfg.landing, YEAR)
    files = [(c.source_id, p) for c in load_contracts().values() for p in source_files(c, cfg)]
    started = time.perf_counter()
    rows = 0
    for source_id, path in files:
        result = ingest_file(path, source_id)
        assert result.status == "loaded", (path, result.reason)
        rows += result.rows
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    report = verify(home)
    verify_s = time.perf_counter() - started
    assert report.ok, [m.message() for m in report.mismatches]
    return {
        "files": len(files),
        "rows": rows,
        "partitions": report.partitions,
        "ingest_s": round(ingest_s, 2),
        "lake_write_s": round(sum(lake_write), 2),
        "lake_writes": len(lake_write),
        "verify_s": round(verify_s, 2),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(one_store(Path(sys.argv[2]))))
        return
    import psycopg

    from transforms.tools.local_s3 import LocalS3

    results = {}
    schema = f"omh_bench_lake_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, LocalS3() as s3:
        s3.create_bucket("omh-bench")
        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema}"')
        try:
            base = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AWS_", "OMH_LAKE_", "OMH_WAREHOUSE"))
            }
            catalog = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
            stores = {
                "folder": {},
                "iceberg": {
                    **s3.env,
                    "OMH_LAKE_URL": "s3://omh-bench/lake",
                    "OMH_LAKE_CATALOG_URL": f"{catalog}?options=-csearch_path%3D{schema}",
                },
            }
            for name, env in stores.items():
                home = Path(tmp) / name
                done = subprocess.run(
                    [sys.executable, __file__, "--child", str(home)],
                    env={**base, **env, "OMH_HOME": str(home)},
                    capture_output=True,
                    text=True,
                )
                assert done.returncode == 0, done.stderr[-3000:]
                results[name] = json.loads(done.stdout.splitlines()[-1])
                print(name, results[name], flush=True)
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    out = BENCH_DIR / "results" / "lake_stores.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
