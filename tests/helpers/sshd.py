"""A private sshd on 127.0.0.1 with a key made for this run, so playbooks run over real SSH."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers.net import free_port, wait_listening

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class PrivateSshd:
    def __init__(self, prefix: list[str] | None = None) -> None:
        # prefix: a command sshd runs under (e.g. unshare in a mount namespace, so the target's files differ
        # from the controller's); it ends with sshd's own argv.
        self.prefix = list(prefix or [])
        self.dir = Path(tempfile.mkdtemp(prefix="em-sshd-"))
        os.chmod(self.dir, 0o700)
        self.port = free_port()
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
        self.proc = subprocess.Popen([*self.prefix, SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "sshd.log", "w"))
        wait_listening(self.port, self.proc, "sshd", self.dir / "sshd.log", timeout=15)
        return self

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
