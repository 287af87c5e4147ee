#!/usr/bin/python3
"""A private Prosody (Debian's package) for palaver's conformance e2e test: the set-up of
scripts/bench/peer_prosody.py (its own config, SQLite store, throw-away CA and log in a
temporary directory; c2s with required STARTTLS on a free loopback port; a MUC component
with mod_muc_mam; run as the `prosody` user), with users created by prosodyctl.

    prosody_peer.py USER:PASSWORD...

Prints one JSON line when the server accepts connections:

    {"event": "ready", "port": P, "ca": CA.pem, "users": ["alice@localhost", ...],
     "version": "Prosody 0.12.3"}

and stops the server (and removes its directory) when standard input closes. A start that
fails prints {"event": "fail", "error": ...} and exits 1.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from bench import common, peer_prosody  # noqa: E402

STEP = 60


def register(work: Path, user: str, password: str) -> None:
    """`prosodyctl register` as the prosody user (Prosody refuses to run as root)."""
    subprocess.run(
        ["runuser", "-u", peer_prosody.RUN_AS, "--", "prosodyctl", "--config",
         str(work / "prosody.cfg.lua"), "register", user, common.DOMAIN, password],
        check=True, timeout=STEP, stdin=subprocess.DEVNULL, capture_output=True)


def main():
    accounts = [a.split(":", 1) for a in sys.argv[1:]]
    work = Path(tempfile.mkdtemp(prefix="palaver-prosody-"))
    peer = peer_prosody.Peer(work, 0, {})
    try:
        peer.start()
        for user, password in accounts:
            register(work, user, password)
        print(json.dumps({"event": "ready", "port": peer.port, "ca": str(peer.ca),
                          "users": [f"{u}@{common.DOMAIN}" for u, _ in accounts],
                          "version": peer.version()}), flush=True)
        sys.stdin.read()
    except Exception as e:  # reported to the test, which fails with it
        print(json.dumps({"event": "fail", "error": repr(e)}), flush=True)
        sys.exit(1)
    finally:
        peer.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
