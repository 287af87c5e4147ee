"""Shared pieces of scripts/bench-compare: free ports, waiting for a listener, dev TLS
certificates made with openssl, credentials files, and the `Target` every peer returns.

A *peer* module (peer_palaver.py, peer_prosody.py, peer_ejabberd.py, peer_kamailio.py) defines
one class with this shape:

    class Peer:
        name: str          # "prosody", "ejabberd", "kamailio", "palaver-sqlite", ...
        protocol: str      # "xmpp" or "sip"
        def __init__(self, workdir: Path, users: int, opts: dict): ...
        def version(self) -> str: ...        # e.g. "Prosody 0.12.3"
        def start(self) -> Target: ...       # fresh data, users u1..uN password "pw", listening on loopback
        def stop(self) -> None: ...          # kills everything it started; idempotent
        def seed_history(self, room: str, count: int) -> None: ...  # xmpp peers: `room` holds `count` archived messages

Every server listens on 127.0.0.1 only, on ports from free_port(); runs as root are fine except
Prosody (runuser -u prosody). Nothing is left running after stop().
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DOMAIN = "localhost"
MUC_DOMAIN = "conference.localhost"
PASSWORD = "pw"
USER_PREFIX = "u"


@dataclass
class Target:
    """What the load generator needs to drive one running server."""

    name: str
    protocol: str
    pid: int
    # Arguments for `palaver-conformance load` that select this server: --server, --domain,
    # --muc-domain, --tls/--ca/--tls-name, --mechanism, --user-prefix/--password, --sip-* ...
    load_args: list[str] = field(default_factory=list)
    # Extra facts printed under the table (storage, settings that differ from defaults).
    notes: list[str] = field(default_factory=list)


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now (bind port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_both(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP (SIP listens on both)."""
    for _ in range(50):
        port = free_port(host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free for TCP and UDP")


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 60.0, proc=None) -> None:
    """Waits until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def dev_certs(directory: Path, names: list[str] | None = None) -> tuple[Path, Path, Path]:
    """A throw-away CA and a leaf for `names` (default localhost + conference.localhost),
    made with openssl. Returns (ca.pem, cert.pem, key.pem); the leaf file holds leaf + CA."""
    names = names or [DOMAIN, MUC_DOMAIN]
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, cert = directory / "server.key", directory / "server.pem"
    if cert.exists() and key.exists() and ca.exists():
        return ca, cert, key
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "30",
         "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    csr = directory / "server.csr"
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}"])
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) +
                   "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
    leaf = directory / "leaf.pem"
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(leaf), "-days", "30", "-extfile", str(ext)])
    cert.write_text(leaf.read_text() + ca.read_text())
    os.chmod(key, 0o644)
    return ca, cert, key


def credentials_file(path: Path, users: int) -> Path:
    """u1:pw … uN:pw, one per line (the load generator's --credentials format)."""
    with path.open("w") as f:
        for i in range(1, users + 1):
            f.write(f"{USER_PREFIX}{i}:{PASSWORD}\n")
    return path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Runs a command, raising with its output when it fails."""
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def kill_tree(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM the process group started with start_new_session=True, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
