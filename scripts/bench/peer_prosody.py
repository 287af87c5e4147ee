"""Prosody peer for scripts/bench-compare: writes a private config, data directory and SQLite
store into `workdir`, provisions users u1..uN straight into that store (SCRAM-SHA-1 hashes,
no prosodyctl), runs Prosody as the `prosody` user on loopback, and seeds a room's MUC archive
(mod_muc_mam, store `muc_log`) with bulk SQL for the history scenario.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pwd
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from . import common
from .common import DOMAIN, MUC_DOMAIN, PASSWORD, USER_PREFIX, Target

SALT = "bench-salt"          # one salt for every user: the server never sees the password
ITERATIONS = 4096            # as palaver (Prosody's default is 10000; only clients pay it)
RUN_AS = "prosody"           # Prosody refuses to run as root

CONFIG = """-- written by scripts/bench/peer_prosody.py
pidfile = "{work}/prosody.pid"
data_path = "{work}/data"
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
admins = {{ }}
log = {{ warn = "{work}/logs/prosody.log" }}
network_backend = "epoll"
use_libevent = false
network_settings = {{ tcp_backlog = 4096 }}
c2s_require_encryption = true
authentication = "internal_hashed"
default_iteration_count = {iterations}
storage = "sql"
sql = {{ driver = "SQLite3", database = "{work}/data/prosody.sqlite" }}
ssl = {{ certificate = "{cert}", key = "{key}" }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "mam" }}
modules_disabled = {{ "s2s", "limits", "offline", "posix" }}
archive_expires_after = "never"

VirtualHost "{domain}"

Component "{muc}" "muc"
    modules_enabled = {{ "muc_mam" }}
    muc_log_by_default = true
    muc_log_expires_after = "never"
    muc_room_cache_size = 1000000
    restrict_room_creation = false
"""

# Exactly what mod_storage_sql 0.12 creates on SQLite, in WAL mode (a setting kept in the
# file; palaver runs SQLite in WAL too).
SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL,
  "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);
CREATE INDEX "prosody_index" ON "prosody" ("host", "user", "store", "key");
CREATE TABLE IF NOT EXISTS "prosodyarchive" ("sort_id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL,
  "when" INTEGER NOT NULL, "with" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);
CREATE UNIQUE INDEX "prosodyarchive_index" ON "prosodyarchive" ("host", "user", "store", "key");
CREATE INDEX "prosodyarchive_with_when"
  ON "prosodyarchive" ("host", "user", "store", "with", "when");
CREATE INDEX "prosodyarchive_when" ON "prosodyarchive" ("host", "user", "store", "when");
CREATE INDEX "prosodyarchive_sort" ON "prosodyarchive" ("host", "user", "store", "sort_id");
"""

NOTES = [
    "storage: sql (SQLite3 via lua-dbi, WAL journal) for accounts, rooms and MAM (muc_log)",
    "auth: internal_hashed, SCRAM-SHA-1, 4096 iterations (default 10000)",
    "network_backend=epoll, use_libevent=false, tcp_backlog=4096 (default 128)",
    "mod_limits, mod_offline, s2s not loaded; c2s STARTTLS required",
    "muc_mam: muc_log_by_default=true, muc_log_expires_after=never (default 1w)",
    "muc_room_cache_size=1000000 (default 100: rooms beyond are swapped to disk)",
    "log level warn to a file",
]


class Peer:
    """Prosody 0.12 from Debian, run from a config and data dir of its own."""

    name = "prosody"
    protocol = "xmpp"

    def __init__(self, workdir: Path, users: int, opts: dict):
        self.work = Path(workdir).resolve()
        self.users = users
        self.opts = opts or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.ca: Path | None = None

    @property
    def db(self) -> Path:
        return self.work / "data" / "prosody.sqlite"

    def version(self) -> str:
        v = Path("/usr/lib/prosody/prosody.version")
        return "Prosody " + (v.read_text().strip() if v.exists() else "?")

    def start(self) -> Target:
        self.stop()
        self._fresh_dirs()
        ca, cert, key = common.dev_certs(self.work / "certs")
        self.ca = ca
        self.port = common.free_port()
        (self.work / "prosody.cfg.lua").write_text(CONFIG.format(
            work=self.work, port=self.port, cert=cert, key=key, domain=DOMAIN,
            muc=MUC_DOMAIN, iterations=ITERATIONS))
        self._create_schema()
        self._provision_users()
        self._chown_tree()
        self._launch()
        return Target(self.name, self.protocol, self.proc.pid, self._load_args(), list(NOTES))

    def pid(self) -> int:
        """The running server process (seed_history restarts it, so the pid changes)."""
        return self.proc.pid if self.proc else 0

    def stop(self) -> None:
        common.kill_tree(self.proc)
        self.proc = None

    def seed_history(self, room: str, count: int) -> None:
        """Makes room@MUC_DOMAIN a persistent public room whose archive holds `count`
        groupchat messages (bodies "history message N", spread over the last 30 days)."""
        self.stop()
        now = int(time.time())
        sql = _room_sql(room, count, now - 30 * 86400, now)
        _execute(self.db, sql)
        self._chown_tree()
        self._launch()

    # -- helpers --------------------------------------------------------------------------

    def _fresh_dirs(self) -> None:
        for sub in ("data", "logs"):
            shutil.rmtree(self.work / sub, ignore_errors=True)
            (self.work / sub).mkdir(parents=True)

    def _chown_tree(self) -> None:
        """Gives the workdir to the `prosody` user, and lets it through the directories
        above (search permission only: a mkdtemp() parent is 0700)."""
        for parent in self.work.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
        pw = pwd.getpwnam(RUN_AS)
        os.chown(self.work, pw.pw_uid, pw.pw_gid)
        for root, dirs, files in os.walk(self.work):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)

    def _launch(self) -> None:
        cmd = ["lua5.4", "/usr/bin/prosody", "--config", str(self.work / "prosody.cfg.lua"), "-F"]
        log = open(self.work / "logs" / "stdout.log", "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.work, user=RUN_AS, group=RUN_AS,
                                     extra_groups=[], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        common.wait_port(self.port, proc=self.proc)

    def _create_schema(self) -> None:
        """The tables mod_storage_sql would make on its first query (it makes them lazily,
        and the users go in before that)."""
        _execute(self.db, SCHEMA)

    def _provision_users(self) -> None:
        _execute(self.db, _users_sql(self.users))

    def _load_args(self) -> list[str]:
        return ["--server", f"127.0.0.1:{self.port}", "--domain", DOMAIN,
                "--muc-domain", MUC_DOMAIN, "--tls", "starttls", "--ca", str(self.ca),
                "--tls-name", DOMAIN, "--user-prefix", USER_PREFIX, "--password", PASSWORD]


def _tables(db: Path) -> set[str]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _execute(db: Path, script: str) -> None:
    with closing(sqlite3.connect(db, timeout=60)) as con:
        con.executescript(script)


def scram_sha1(password: str, salt: str, iterations: int) -> tuple[str, str]:
    """(StoredKey, ServerKey) as lower-case hex, the way mod_auth_internal_hashed keeps them."""
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    return hashlib.sha1(client_key).hexdigest(), server_key.hex()


def _users_sql(users: int) -> str:
    """One keyval row per account field (store `accounts`) for u1..uN, in one transaction."""
    stored, server = scram_sha1(PASSWORD, SALT, ITERATIONS)
    fields = [("stored_key", "string", stored), ("server_key", "string", server),
              ("salt", "string", SALT), ("iteration_count", "number", str(ITERATIONS))]
    selects = " UNION ALL ".join(f"SELECT '{k}','{t}','{v}'" for k, t, v in fields)
    return f"""BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {users}),
f(k, t, v) AS ({selects})
INSERT INTO prosody (host, user, store, key, type, value)
SELECT '{DOMAIN}', '{USER_PREFIX}' || i, 'accounts', k, t, v FROM n, f;
COMMIT;
"""


def _room_sql(room: str, count: int, first: int, last: int) -> str:
    """A persistent public room `room` plus `count` muc_log rows, `when` increasing evenly
    from `first` to `last` (seconds), in the shape mod_muc_mam writes them."""
    step = (last - first) / max(count, 1)
    jid = f"{room}@{MUC_DOMAIN}"
    rows = [("_jid", "string", jid), ("_data", "json", '{"persistent":true,"language":"en"}'),
            ("_affiliation_data", "json", "{}")]
    config = ",".join(f"('{MUC_DOMAIN}','{room}','config','{k}','{t}','{v}')" for k, t, v in rows)
    return f"""PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;
BEGIN;
DELETE FROM prosody WHERE host='{MUC_DOMAIN}' AND user='{room}' AND store='config';
INSERT INTO prosody (host, user, store, key, type, value) VALUES {config};
DELETE FROM prosody WHERE host='{MUC_DOMAIN}' AND user='' AND store='persistent' AND key='{jid}';
INSERT INTO prosody (host, user, store, key, type, value)
  VALUES ('{MUC_DOMAIN}', '', 'persistent', '{jid}', 'boolean', 'true');
DELETE FROM prosodyarchive WHERE host='{MUC_DOMAIN}' AND user='{room}' AND store='muc_log';
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {count})
INSERT INTO prosodyarchive (host, user, store, key, "when", "with", type, value)
SELECT '{MUC_DOMAIN}', '{room}', 'muc_log', printf('seed-%010d', i),
       {first} + CAST((i - 1) * {step!r} AS INTEGER), 'message<groupchat', 'xml',
       '<message type=''groupchat'' from=''{jid}/seeder'' xml:lang=''en'' to=''{jid}'' id='''
       || printf('seed-%010d', i) || '''><body>history message ' || i || '</body></message>'
FROM n;
COMMIT;
PRAGMA journal_mode=WAL;
"""
