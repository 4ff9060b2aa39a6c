"""A private sshd on 127.0.0.1 with a key made for this run, so playbooks run over real SSH."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateSshd:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="em-sshd-"))
        os.chmod(self.dir, 0o700)
        self.port = _free_port()
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateSshd:
        if not Path(SSHD).exists():
            raise RuntimeError("sshd is not installed (apt-get install openssh-server)")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        auth = self.dir / "authorized_keys"
        shutil.copy(self.key.with_suffix(".pub"), auth)
        os.chmod(auth, 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.dir / "sshd_config"
        config.write_text(f"""\
ListenAddress 127.0.0.1
Port {self.port}
HostKey {self.dir / 'host_key'}
AuthorizedKeysFile {auth}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes no
UsePAM no
PidFile {self.dir / 'sshd.pid'}
Subsystem sftp internal-sftp
LogLevel ERROR
""")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "sshd.log", "w"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"sshd did not start: {(self.dir / 'sshd.log').read_text()}")

    @property
    def env(self) -> dict[str, str]:
        return {"EM_SSH_PORT": str(self.port), "EM_SSH_KEY": str(self.key), "EM_SSH_USER": "root",
                "EM_SSH_KNOWN_HOSTS": str(self.known_hosts)}

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
