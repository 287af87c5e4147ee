"""Command line of scripts/bench-compare: which scenarios against which peers, sizes, where
the reports go; runs them one after another (one server at a time, started fresh for each
scenario) and prints the comparison table."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import resource
import subprocess
import traceback
from pathlib import Path

from . import scenarios, table

REPO = Path(__file__).resolve().parents[2]
XMPP_PEERS = ["palaver-sqlite", "palaver-postgres", "prosody", "ejabberd"]
SIP_PEERS = ["palaver-sqlite", "palaver-postgres", "kamailio"]
SCENARIOS = ["idle", "fanout", "bigroom", "history", "sip"]


def make_peer(name: str, scenario: str, workdir: Path, users: int):
    opts: dict = {}
    if name.startswith("palaver-"):
        module, opts["store"] = "peer_palaver", name.split("-", 1)[1]
        if scenario == "sip":
            opts["protocol"] = "sip"
    else:
        module = f"peer_{name}"
    return importlib.import_module(f"bench.{module}").Peer(workdir, users, opts)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench-compare", description=__doc__)
    p.add_argument("--scenario", action="append", choices=SCENARIOS)
    p.add_argument("--peer", action="append", help="palaver-sqlite, palaver-postgres, prosody, ejabberd, kamailio")
    p.add_argument("--out", type=Path, default=REPO / "bench-out")
    p.add_argument("--quick", action="store_true", help="small sizes (minutes, not an hour)")
    p.add_argument("--idle-users", type=int)
    p.add_argument("--fanout-rooms", type=int)
    p.add_argument("--bigroom-users", type=int)
    p.add_argument("--history-messages", type=int)
    p.add_argument("--duration", type=int)
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--tool", type=Path, default=REPO / "target/release/palaver-conformance")
    return p.parse_args(argv)


def sizes_from(args) -> scenarios.Sizes:
    s = scenarios.Sizes()
    if args.quick:
        s = scenarios.Sizes(idle_users=5_000, fanout_rooms=100, fanout_rates=[0.1, 0.5, 1],
                            bigroom_users=500, bigroom_rates=[1, 4], history_messages=100_000,
                            sip_rooms=10, sip_rates=[1, 4], duration=5)
    for key in ("idle_users", "fanout_rooms", "bigroom_users", "history_messages", "duration"):
        if getattr(args, key) is not None:
            setattr(s, key, getattr(args, key))
    return s


def machine() -> dict:
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except Exception:  # noqa: BLE001 — a missing tool is just not reported
            return "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "postgres": version(["psql", "--version"]),
        "git": version(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


def run_one(scenario, name, sizes, args, results):
    workdir = args.out / "work" / f"{scenario}-{name}"
    subprocess.run(["rm", "-rf", str(workdir)])
    workdir.mkdir(parents=True)
    reports = args.out / "reports" / f"{scenario}-{name}"
    reports.mkdir(parents=True, exist_ok=True)
    peer = make_peer(name, scenario, workdir, sizes.users_for(scenario))
    entry = {"peer": name, "version": peer.version()}
    print(f"== {scenario} × {name} ({entry['version']})", flush=True)
    try:
        target = peer.start()
        entry["notes"] = target.notes
        pid = None
        if scenario == "history":
            peer.seed_history("history", sizes.history_messages)
            pid = peer.pid() if hasattr(peer, "pid") else None
        fn = getattr(scenarios, scenario)
        entry["result"] = fn(args.tool, target, reports, sizes, pid) if scenario == "history" \
            else fn(args.tool, target, reports, sizes)
    except Exception as e:  # noqa: BLE001 — one peer failing must not stop the others
        entry["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    finally:
        peer.stop()
    results.setdefault(scenario, {})[name] = entry
    print(f"   -> {json.dumps(entry.get('result', entry.get('error')))[:400]}", flush=True)


def raise_open_files() -> None:
    """Every session is a socket in the server and one in the load tool: lift the limit as far
    as this process may (as root: to fs.nr_open), for us and the servers we start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        ceiling = int(Path("/proc/sys/fs/nr_open").read_text())
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, ceiling))
    except (OSError, ValueError):
        # Without CAP_SYS_RESOURCE (containers) the hard limit is the ceiling, and it bounds the
        # sessions one server process can hold: report it instead of failing later.
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"open files per process: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    if not args.table_only:
        raise_open_files()
        sizes = sizes_from(args)
        results["_machine"] = machine()
        for scenario in args.scenario or SCENARIOS:
            peers = SIP_PEERS if scenario == "sip" else XMPP_PEERS
            for name in [p for p in (args.peer or peers) if p in peers]:
                run_one(scenario, name, sizes, args, results)
                results.setdefault("_sizes", {})[scenario] = {
                    k: v for k, v in vars(sizes).items()}
                results_file.write_text(json.dumps(results, indent=1))
    text = table.render(results)
    (args.out / "table.md").write_text(text)
    print(text)
    return 0
