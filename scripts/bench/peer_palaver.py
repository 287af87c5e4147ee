"""palaver as a benchmark peer: a release `palaver serve` with its own data directory, SQLite
(the default) or PostgreSQL (a fresh database per run), STARTTLS with its own development
certificates, users u1..uN imported with `palaver user import`, and the per-address limits
that protect a production server from one abusive address lifted (every load session comes
from a handful of 127.x addresses)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from . import common

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


class Peer:
    protocol = "xmpp"

    def __init__(self, workdir: Path, users: int, opts: dict):
        self.store = opts.get("store", "sqlite")
        self.name = f"palaver-{self.store}"
        self.protocol = opts.get("protocol", "xmpp")
        if self.protocol == "sip":
            self.name += "-sip"
        self.workdir = workdir
        self.users = users
        self.bin = Path(opts.get("bin") or REPO / "target/release/palaver")
        self.proc: subprocess.Popen | None = None
        self.db = f"bench_palaver_{int(time.time())}"
        self._starts = 0

    def version(self) -> str:
        out = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True)
        return out.stdout.strip() or "palaver"

    def _store_url(self) -> str:
        if self.store == "postgres":
            return f"postgres://postgres@127.0.0.1:5432/{self.db}"
        return ""

    def _write_config(self, c2s: int, sip: int) -> Path:
        data = self.workdir / "data"
        cfg = self.workdir / "palaver.toml"
        cfg.write_text(f"""domain = "localhost"
data_dir = "{data}"

[store]
url = "{self._store_url()}"

[xmpp]
c2s = ["127.0.0.1:{c2s}"]
c2s_direct_tls = []
max_connections_per_ip = 0
auth_failures_before_backoff = 1000000

[sip]
udp = ["127.0.0.1:{sip}"]
tcp = ["127.0.0.1:{sip}"]
tls = []
rate_per_sec = 1000000
rate_burst = 1000000
max_connections_per_ip = 0

[http]
listen = []

[log]
filter = "warn"
""")
        return cfg

    def _palaver(self, *args: str) -> None:
        common.run([str(self.bin), "--config", str(self.config), *args], cwd=self.workdir)

    def start(self) -> common.Target:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.store == "postgres":
            subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {self.db}"],
                           capture_output=True)
            common.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {self.db}"])
        c2s, sip = common.free_port(), common.free_port_both()
        self.config = self._write_config(c2s, sip)
        creds = common.credentials_file(self.workdir / "users.txt", self.users)
        self._palaver("user", "import", str(creds))
        (self.workdir / "palaver.log").write_text("")
        self._serve()
        ca = self.workdir / "data/certs/ca.pem"
        notes = [f"store {self.store} ({'FULL sync, WAL' if self.store == 'sqlite' else 'PostgreSQL 15, synchronous_commit on'})",
                 "per-IP caps lifted (max_connections_per_ip = 0, SIP rate_per_sec 1e6)"]
        if self.protocol == "sip":
            args = ["--protocol", "sip", "--server", f"127.0.0.1:{sip}", "--domain", "localhost",
                    "--muc-domain", "conference.localhost", "--user-prefix", "u", "--password", "pw"]
        else:
            args = ["--server", f"127.0.0.1:{c2s}", "--domain", "localhost",
                    "--muc-domain", "conference.localhost", "--tls", "starttls", "--ca", str(ca),
                    "--tls-name", "localhost", "--user-prefix", "u", "--password", "pw"]
        return common.Target(self.name, self.protocol, self.proc.pid, args, notes)

    def stop(self) -> None:
        common.kill_tree(self.proc, grace=15)
        self.proc = None

    def seed_history(self, room: str, count: int) -> None:
        """Creates `room` persistent and writes `count` messages straight into the store's
        messages table (the format palaver itself writes), then restarts the server. No
        ANALYZE afterwards: the other peers' seeds get none either, and palaver never runs it."""
        running = self.proc is not None
        self.stop()
        self._palaver("room", "create", room)
        now_ms = int(time.time() * 1000)
        span = 30 * 24 * 3600 * 1000
        step = max(span // max(count, 1), 1)
        start = now_ms - step * count
        insert = (
            "INSERT INTO messages (room_id, seq, stanza_id, origin_id, sender, nick, occupant_id, body, extra, ts) "
            "SELECT r.id, g.n, 'seed-' || g.n, 'seed-' || g.n, 'u1@localhost', 'u1', 'seedocc', "
            "'history message ' || g.n, NULL, {start} + CAST(g.n AS BIGINT) * {step} FROM {gen}, rooms r WHERE r.name = '{room}'"
        )
        if self.store == "postgres":
            sql = insert.format(start=start, step=step, room=room,
                                gen=f"generate_series(1, {count}) AS g(n)")
            common.run(["psql", self._store_url(), "-qc", sql])
        else:
            gen = (f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) "
                   "SELECT n FROM s) AS g")
            sql = insert.format(start=start, step=step, room=room, gen=gen)
            db = self.workdir / "data/palaver.db"
            common.run(["sqlite3", str(db), "PRAGMA journal_mode=WAL; " + sql + ";"])
        if running:
            self._serve()

    def _serve(self) -> None:
        """Starts `palaver serve` (output appended to palaver.log) and waits until it is ready."""
        log = (self.workdir / "palaver.log").open("a")
        self._starts += 1
        self.proc = subprocess.Popen([str(self.bin), "--config", str(self.config), "serve"],
                                     cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120.0) -> None:
        """Wait for this start's `palaver: ready` line: every listener is bound by then and the
        development CA (written after the listeners bind) exists."""
        log = self.workdir / "palaver.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.read_text().count("palaver: ready") >= self._starts:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"palaver exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise RuntimeError("palaver did not say it was ready")

    def pid(self) -> int:
        return self.proc.pid if self.proc else 0
