"""`cleanit run` (what `make run` starts) on a fresh data directory: embedded PostgreSQL,
migrations, demo data, API, worker and demo site; Ctrl-C stops everything, PostgreSQL
included; a second run reuses the data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANIT_")}
    env["CLEANIT_DATA_DIR"] = str(data_dir)
    env["CLEANIT_LOG_LEVEL"] = "WARNING"
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cleanit.cli.main import main; main()",
            "run",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"cleanit run exited early:\n{out}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("cleanit run did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("cleanit run did not stop on Ctrl-C") from None
    return out.decode()


def test_run_serves_the_demo_and_stops_cleanly() -> None:
    # Not under pytest's basetemp (mode 0700 for root): the embedded server runs as its own
    # system user, which must reach its data directory to start and to stop.
    parent = Path(tempfile.mkdtemp(prefix="cleanit-run-test-"))
    parent.chmod(0o755)
    data = parent / "var"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(data, port)
    try:
        _wait_ready(base, proc)
        assert "Example Video" in httpx.get(f"{base}/demo-site/").text
        token = httpx.post(
            f"{base}/api/v1/tokens",
            json={"email": "reviewer@video.example.org", "password": "demo-password-123"},
        ).json()
        queue = httpx.get(
            f"{base}/api/v1/cases", headers={"Authorization": f"Bearer {token['token']}"}
        ).json()
        assert queue["total"] == 2
        assert httpx.get(f"{base}/api/v1/openapi.json").status_code == 200
        # The worker delivers the demo notifier's acknowledgement into the local mailbox.
        deadline = time.monotonic() + 30
        inbox = data / "mailbox" / "pat@public.example.net"
        while time.monotonic() < deadline and not list(inbox.glob("*.eml")):
            time.sleep(0.3)
        assert list(inbox.glob("*.eml")), "the acknowledgement never reached the mailbox"
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "demo-password-123" in out and "reviewer@video.example.org" in out
    assert not (data / "pgdata" / "postmaster.pid").exists(), "PostgreSQL still running"

    # A second run reuses the data: same demo, nothing seeded twice.
    proc = _start(data, port)
    try:
        _wait_ready(base, proc)
        token = httpx.post(
            f"{base}/api/v1/tokens",
            json={"email": "reviewer@video.example.org", "password": "demo-password-123"},
        ).json()
        queue = httpx.get(
            f"{base}/api/v1/cases", headers={"Authorization": f"Bearer {token['token']}"}
        ).json()
        assert queue["total"] == 2
    finally:
        _stop(proc)
    assert proc.returncode == 0
    assert not (data / "pgdata" / "postmaster.pid").exists()
    shutil.rmtree(parent, ignore_errors=True)
