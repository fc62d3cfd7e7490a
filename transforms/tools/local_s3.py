"""A local S3-compatible server (moto) for the demo cluster and the tests of the object-storage lake.

moto runs from its own virtualenv (``.venv-moto``, made by ``make setup`` from
``deploy/moto-requirements.txt``: its python-dateutil pin conflicts with Airflow's) as its own
process, ``moto_server -H 127.0.0.1 -p PORT``. Its objects live in its memory: stopping it drops the
lake's files (the catalog in PostgreSQL then points at nothing), which suits a demo or a test only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from transforms.config import REPO_ROOT

# Credentials moto accepts (it checks none); a real endpoint takes the operator's own.
DEMO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "omh-local",
    "AWS_SECRET_ACCESS_KEY": "omh-local",
    "AWS_REGION": "us-east-1",
}


class LocalS3Error(RuntimeError):
    pass


def server_command() -> Path:
    """``moto_server`` of ``OMH_MOTO_VENV`` (default ``.venv-moto`` of the repository)."""
    venv = Path(os.environ.get("OMH_MOTO_VENV") or REPO_ROOT / ".venv-moto")
    return venv / "bin" / "moto_server"


def available() -> bool:
    return server_command().is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalS3:
    """One moto server process; ``with LocalS3() as s3: s3.env`` gives the AWS variables to use."""

    def __init__(self, port: int | None = None, log: Path | None = None):
        self.port = port or _free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, **DEMO_CREDENTIALS}

    def start(self, timeout: float = 30.0) -> LocalS3:
        command = server_command()
        if not command.is_file():
            raise LocalS3Error(f"{command} is missing: `make setup` creates the moto virtualenv")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [str(command), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a Ctrl-C of the launcher is handled by stop()
        )
        try:
            self._wait(timeout)
        except BaseException:  # not answering, or interrupted meanwhile: no server left behind
            self.stop()
            raise
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalS3Error(f"moto_server exited with {self.proc.returncode} (port {self.port})")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise LocalS3Error(f"moto_server did not answer on {self.endpoint} within {timeout:.0f} s")

    def create_bucket(self, bucket: str) -> None:
        from pyarrow.fs import S3FileSystem

        fs = S3FileSystem(
            endpoint_override=self.endpoint,
            access_key=DEMO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_key=DEMO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region=DEMO_CREDENTIALS["AWS_REGION"],
            allow_bucket_creation=True,
        )
        fs.create_dir(bucket)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def bucket_of(url: str) -> str:
    """``bucket`` of ``s3://bucket/prefix``."""
    return url[len("s3://") :].split("/", 1)[0]
