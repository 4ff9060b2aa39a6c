"""Local test servers (moto's S3, a private sshd): a free loopback port and waiting until one listens."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 30) -> None:
    """Until 127.0.0.1:port accepts a connection; RuntimeError with the log when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text()}") from None
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:g} s: {log.read_text()}")
