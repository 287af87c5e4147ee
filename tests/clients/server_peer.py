#!/usr/bin/python3
"""A private Prosody or ejabberd (Debian's packages) for palaver's conformance e2e test, set
up as scripts/bench/peer_prosody.py and peer_ejabberd.py set them up for the benchmarks: a
config, SQLite store, throw-away CA and logs of its own in a temporary directory; c2s with
required STARTTLS on a free loopback port; a MUC service with MAM.

    server_peer.py prosody USER:PASSWORD...   users made with prosodyctl (as the prosody user)
    server_peer.py ejabberd                   users u1, u2, u3 put in ejabberd's store

Prints one JSON line when the server accepts connections:

    {"event": "ready", "port": P, "ca": CA.pem, "accounts": ["user@localhost:password", ...],
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

from bench import common, peer_ejabberd, peer_prosody  # noqa: E402

STEP = 60
EJABBERD_USERS = 3


def start_prosody(work: Path, accounts: list[list[str]]):
    peer = peer_prosody.Peer(work, 0, {})
    peer.start()
    for user, password in accounts:
        # Prosody refuses to run as root, prosodyctl too.
        subprocess.run(
            ["runuser", "-u", peer_prosody.RUN_AS, "--", "prosodyctl", "--config",
             str(work / "prosody.cfg.lua"), "register", user, common.DOMAIN, password],
            check=True, timeout=STEP, stdin=subprocess.DEVNULL, capture_output=True)
    return peer, [f"{u}@{common.DOMAIN}:{p}" for u, p in accounts]


def start_ejabberd(work: Path, _accounts):
    peer = peer_ejabberd.Peer(work, EJABBERD_USERS, {})
    peer.start()
    users = [f"{common.USER_PREFIX}{i}@{common.DOMAIN}:{common.PASSWORD}"
             for i in range(1, EJABBERD_USERS + 1)]
    return peer, users


def main():
    kind = sys.argv[1]
    accounts = [a.split(":", 1) for a in sys.argv[2:]]
    work = Path(tempfile.mkdtemp(prefix=f"palaver-{kind}-"))
    peer = None
    try:
        peer, users = {"prosody": start_prosody, "ejabberd": start_ejabberd}[kind](work, accounts)
        print(json.dumps({"event": "ready", "port": peer.port, "ca": str(peer.ca),
                          "accounts": users, "version": peer.version()}), flush=True)
        sys.stdin.read()
    except Exception as e:  # reported to the test, which fails with it
        print(json.dumps({"event": "fail", "error": repr(e)}), flush=True)
        sys.exit(1)
    finally:
        if peer is not None:
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
