"""System-test helpers: a real ``cleanit serve`` process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

# The console script's entry point, run with this interpreter (same venv, no PATH lookup).
CLI = [sys.executable, "-c", "from cleanit.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """``cleanit serve`` in a subprocess, with its output in a log file."""

    database_url: str
    data_dir: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_within: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANIT_")}
        env.update(
            CLEANIT_DATABASE_URL=self.database_url,
            CLEANIT_DATA_DIR=str(self.data_dir),
            CLEANIT_LOG_LEVEL="WARNING",
        )
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.started.append(self.proc)
        self.wait_ready(ready_within)

    def wait_ready(self, within: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"cleanit serve exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"cleanit serve not ready within {within} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no goodbye — a crash."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return "(no output)"


@pytest.fixture
def cleanit_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on a free port for ``database_url`` (not started); always killed afterwards."""
    server = ServerProcess(database_url, tmp_path / "data", free_port(), tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop_all()
