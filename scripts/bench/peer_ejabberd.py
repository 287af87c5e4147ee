"""ejabberd peer for scripts/bench-compare: writes a private ejabberd.yml, SQLite database,
Mnesia spool and log dir into `workdir`, bulk-inserts users u1..uN (SCRAM-SHA-1 hashes) into
that database, runs the Debian ejabberd release under `erl` with a node name of its own on
loopback, and seeds a room's MAM archive with bulk SQL for the history scenario.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from . import common
from .common import DOMAIN, MUC_DOMAIN, PASSWORD, USER_PREFIX, Target

EBIN = Path("/usr/lib/x86_64-linux-gnu/ejabberd-23.01-1")
SCHEMA = EBIN / "priv" / "sql" / "lite.sql"
SALT = b"bench-salt"
ITERATIONS = 4096
MAX_PORTS = 1_048_576        # Erlang ports (sockets, files); 32000 in ejabberdctl
MAX_PROCS = 4_194_304        # Erlang processes; ejabberdctl's default is 250000

CONFIG = """# written by scripts/bench/peer_ejabberd.py
hosts: ["{domain}"]
loglevel: warning
certfiles: ["{cert}", "{key}"]
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    backlog: 4096
    shaper: none
    max_fsm_queue: 1000000
    access: c2s
s2s_access: none
auth_method: sql
auth_password_format: scram
auth_scram_hash: sha
default_db: sql
new_sql_schema: false
sql_type: sqlite
sql_database: "{db}"
max_fsm_queue: 1000000
shaper: {{}}
shaper_rules:
  c2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  announce:
    deny: all
  configure:
    deny: all
  muc_create:
    allow: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_mam:
    db_type: sql
  mod_muc:
    host: "{muc}"
    db_type: sql
    access: all
    access_create: muc_create
    access_mam: all
    max_users: 1000000
    max_users_presence: 1000000
    max_user_conferences: 1000000
    default_room_options:
      mam: true
      max_users: 1000000
      persistent: false
"""

NOTES = [
    "storage: SQLite (WAL journal) for users, rooms and MAM; Mnesia for RAM tables",
    "auth: sql, scram (SHA-1), 4096 iterations",
    "c2s listener backlog 4096 (default 5: a burst of connects stalls in the accept queue)",
    "c2s shaper none (packaged config: 3000 B/s), max_fsm_queue 1000000 (default 10000)",
    "mod_muc: default_room_options mam=true, max_users=1000000 (default 200); max_users, max_users_presence,"
    " max_user_conferences 1000000 (defaults 200, 1000, 100)",
    f"erl +P {MAX_PROCS} +Q {MAX_PORTS}, ERL_MAX_ETS_TABLES=10000 (ejabberdctl: 250000"
    " processes, 32000 ports, 1400 ETS tables); Erlang distribution on 127.0.0.1 only",
    "modules: disco, ping, roster, mam, muc only; no s2s; loglevel warning to a file",
]


class Peer:
    """ejabberd 23.01 from Debian, started with `erl` directly (no ejabberdctl, no service)."""

    name = "ejabberd"
    protocol = "xmpp"

    def __init__(self, workdir: Path, users: int, opts: dict):
        self.work = Path(workdir).resolve()
        self.users = users
        self.opts = opts or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.ca: Path | None = None
        self.node = ""
        self.cookie = ""

    @property
    def db(self) -> Path:
        return self.work / "data" / "ejabberd.db"

    def version(self) -> str:
        app = (EBIN / "ebin" / "ejabberd.app").read_text()
        vsn = app.split('{vsn,"', 1)[1].split('"', 1)[0] if '{vsn,"' in app else "?"
        return f"ejabberd {vsn}"

    def start(self) -> Target:
        self.stop()
        self.node = ""
        self.cookie = ""
        for sub in ("data", "spool", "logs"):
            shutil.rmtree(self.work / sub, ignore_errors=True)
            (self.work / sub).mkdir(parents=True)
        self.ca, cert, key = common.dev_certs(self.work / "certs")
        self.port = common.free_port()
        (self.work / "ejabberd.yml").write_text(CONFIG.format(
            domain=DOMAIN, muc=MUC_DOMAIN, cert=cert, key=key, port=self.port, db=self.db))
        _execute(self.db, "PRAGMA journal_mode=WAL;\n" + SCHEMA.read_text())
        _execute(self.db, _users_sql(self.users))
        self._launch()
        return Target(self.name, self.protocol, self.proc.pid, self._load_args(), list(NOTES))

    def pid(self) -> int:
        """The running server process (seed_history restarts it, so the pid changes)."""
        return self.proc.pid if self.proc else 0

    def stop(self) -> None:
        common.kill_tree(self.proc, grace=10.0)
        self.proc = None

    def seed_history(self, room: str, count: int) -> None:
        """Makes room@MUC_DOMAIN a persistent public room whose archive holds `count`
        groupchat messages (bodies "history message N", spread over the last 30 days)."""
        self.stop()
        now = int(time.time())
        _execute(self.db, _room_sql(room, count, now - 30 * 86400, now))
        self._launch()

    # -- helpers --------------------------------------------------------------------------

    def _launch(self) -> None:
        """Runs the node; its name stays the same for the life of the spool (Mnesia's schema
        belongs to a node name) and never clashes with another beam on the shared epmd."""
        self.node = self.node or f"bench_ejabberd_{os.getpid()}_{time.time_ns() % 10**9}"
        self.cookie = self.cookie or secrets.token_hex(16)
        env = dict(os.environ, HOME=str(self.work), ERL_LIBS=str(EBIN.parent),
                   EJABBERD_CONFIG_PATH=str(self.work / "ejabberd.yml"),
                   EJABBERD_LOG_PATH=str(self.work / "logs" / "ejabberd.log"),
                   ERL_CRASH_DUMP=str(self.work / "logs" / "erl_crash.dump"),
                   ERL_MAX_PORTS=str(MAX_PORTS), ERL_MAX_ETS_TABLES="10000")
        cmd = ["erl", "-sname", f"{self.node}@localhost", "-setcookie", self.cookie,
               "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
               "-noinput", "-noshell", "+P", str(MAX_PROCS), "+Q", str(MAX_PORTS),
               "-mnesia", "dir", f'"{self.work / "spool"}"', "-s", "ejabberd"]
        out = open(self.work / "logs" / "stdout.log", "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.work, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        common.wait_port(self.port, timeout=120, proc=self.proc)

    def _load_args(self) -> list[str]:
        return ["--server", f"127.0.0.1:{self.port}", "--domain", DOMAIN,
                "--muc-domain", MUC_DOMAIN, "--tls", "starttls", "--ca", str(self.ca),
                "--tls-name", DOMAIN, "--user-prefix", USER_PREFIX, "--password", PASSWORD]


def _execute(db: Path, script: str) -> None:
    with closing(sqlite3.connect(db, timeout=60)) as con:
        con.executescript(script)


def scram_sha1(password: str, salt: bytes, iterations: int) -> tuple[str, str]:
    """(StoredKey, ServerKey) base64-encoded, as ejabberd's `scram` password format keeps them."""
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    return _b64(hashlib.sha1(client_key).digest()), _b64(server_key)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _users_sql(users: int) -> str:
    stored, server = scram_sha1(PASSWORD, SALT, ITERATIONS)
    salt = base64.b64encode(SALT).decode()
    return f"""BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {users})
INSERT INTO users (username, password, serverkey, salt, iterationcount)
SELECT '{USER_PREFIX}' || i, '{stored}', '{server}', '{salt}', {ITERATIONS} FROM n;
COMMIT;
"""


ROOM_OPTS = (
    "[{title,<<>>},{description,<<>>},{allow_change_subj,true},{allow_query_users,true},"
    "{allow_private_messages,true},{allow_private_messages_from_visitors,anyone},"
    "{allow_visitor_status,true},{allow_visitor_nickchange,true},{public,true},"
    "{public_list,true},{persistent,true},{moderated,true},{members_by_default,true},"
    "{members_only,false},{allow_user_invites,false},{password_protected,false},"
    "{captcha_protected,false},{password,<<>>},{anonymous,true},{logging,false},"
    "{max_users,1000000},{allow_voice_requests,true},{allow_subscription,false},{mam,true},"
    "{presence_broadcast,[moderator,participant,visitor]},{voice_request_min_interval,1800},"
    "{vcard,<<>>},{vcard_xupdate,undefined},{pubsub,<<>>},{enable_hats,false},"
    "{lang,<<\"en\">>},{captcha_whitelist,[]},{affiliations,[]},{roles,[]},{subject,[]},"
    "{subject_author,<<>>},{hats_users,[]},{hibernation_time,undefined}]")


def _room_sql(room: str, count: int, first: int, last: int) -> str:
    """A persistent public room `room` (the options ejabberd itself writes, mam on) plus
    `count` archive rows shaped like mod_mam's for a groupchat post. The archive id is the
    timestamp in microseconds, so timestamps increase strictly from `first` to `last`."""
    jid = f"{room}@{MUC_DOMAIN}"
    step = max((last - first) * 1_000_000 // max(count, 1), 1)
    sender = f"seeder@{DOMAIN}"
    xml = (f"'<message xml:lang=''en'' to=''{jid}'' from=''{sender}/seed'' type=''groupchat''"
           f" id=''seed-' || i || ''' xmlns=''jabber:client''><body>history message ' || i"
           f" || '</body></message>'")
    return f"""PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;
BEGIN;
DELETE FROM muc_room WHERE name='{room}' AND host='{MUC_DOMAIN}';
INSERT INTO muc_room (name, host, opts, created_at)
  VALUES ('{room}', '{MUC_DOMAIN}', '{ROOM_OPTS}', '1970-01-02 00:00:00');
DELETE FROM archive WHERE username='{jid}';
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {count})
INSERT INTO archive (username, timestamp, peer, bare_peer, xml, txt, kind, nick)
SELECT '{jid}', {first * 1_000_000} + (i - 1) * {step}, '{sender}/seed', '{sender}', {xml},
       'history message ' || i, 'groupchat', 'seeder'
FROM n;
COMMIT;
PRAGMA journal_mode=WAL;
"""
