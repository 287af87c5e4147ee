#!/usr/bin/python3
"""A private ejabberd (Debian's package) for palaver's conformance e2e test: the same set-up
scripts/bench/peer_ejabberd.py uses for the benchmarks (its own config, SQLite database,
Mnesia spool and throw-away CA in a temporary directory; c2s with required STARTTLS on a free
loopback port; mod_muc with MAM), with three users.

    ejabberd_peer.py

Prints one JSON line when the server accepts connections:

    {"event": "ready", "port": P, "ca": CA.pem, "users": ["u1@localhost", ...],
     "password": PW, "version": "ejabberd 23.01"}

and stops the server (and removes its directory) when standard input closes. A start that
fails prints {"event": "fail", "error": ...} and exits 1.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from bench import common, peer_ejabberd  # noqa: E402

USERS = 3


def main():
    work = Path(tempfile.mkdtemp(prefix="palaver-ejabberd-"))
    peer = peer_ejabberd.Peer(work, USERS, {})
    try:
        peer.start()
        users = [f"{common.USER_PREFIX}{i}@{common.DOMAIN}" for i in range(1, USERS + 1)]
        print(json.dumps({"event": "ready", "port": peer.port, "ca": str(peer.ca),
                          "users": users, "password": common.PASSWORD,
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
