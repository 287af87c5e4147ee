"""The comparison table of scripts/bench-compare (Markdown): one section per scenario, one
row per peer with its absolute figures, and palaver's figure divided by the peer's (for
memory and latency, the peer's divided by palaver's, so > 1 always means palaver is ahead)."""

from __future__ import annotations

PALAVERS = ["palaver-sqlite", "palaver-postgres"]


def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def ratio(a, b):
    if a and not b:
        return "∞ (no step passed)"
    if not a or not b:
        return "—"
    return f"{a / b:.2f}×"


def row(cells):
    return "| " + " | ".join(cells) + " |"


def idle_section(entries: dict) -> list[str]:
    out = [row(["server", "joined / healthy of N", "joins/s", "ping p99 ms", "RSS/session KiB",
                "RSS ratio (peer ÷ palaver-sqlite)"]), row(["---"] * 6)]
    ref = (entries.get("palaver-sqlite", {}).get("result") or {}).get("rss_per_session_kib")
    for name, e in entries.items():
        r = e.get("result")
        if not r:
            out.append(row([name, "error: " + e.get("error", "?")[:120], "", "", "", ""]))
            continue
        healthy_all = r.get("healthy") == r.get("users")
        out.append(row([f"{name} ({e['version']})",
                        f"{fmt(r.get('joined'))} / {fmt(r.get('healthy'))} of {fmt(r.get('users'))}"
                        + ("" if healthy_all else " ✗"),
                        fmt(r.get("joins_per_s")), fmt(r.get("ping_p99_ms")),
                        fmt(r.get("rss_per_session_kib")),
                        "" if name == "palaver-sqlite" else ratio(r.get("rss_per_session_kib"), ref)]))
    return out


def stepped_section(entries: dict) -> list[str]:
    out = [row(["server", "best rate /user/s", "deliveries/s", "p50 ms", "p99 ms", "server CPU %",
                "load avg", "steps (rate: deliveries/s, p99)", "palaver-sqlite ÷", "palaver-postgres ÷"]),
           row(["---"] * 10)]
    best = {p: ((entries.get(p, {}).get("result") or {}).get("best") or {}).get("deliveries_per_s")
            for p in PALAVERS}
    for name, e in entries.items():
        r = e.get("result")
        if not r:
            out.append(row([name, "error: " + e.get("error", "?")[:120]] + [""] * 8))
            continue
        b = r.get("best") or {}
        steps = "; ".join(f"{s['rate']}: {fmt(s.get('deliveries_per_s'), 0)}, {fmt(s.get('p99_ms'))}"
                          + ("" if s.get("passed") else " ✗") for s in r.get("steps", []))
        mine = b.get("deliveries_per_s")
        out.append(row([f"{name} ({e['version']})", fmt(b.get("rate"), 3) if b else "none passed",
                        fmt(mine, 0), fmt(b.get("p50_ms")), fmt(b.get("p99_ms")),
                        fmt(b.get("server_cpu_pct"), 0), fmt(b.get("loadavg")), steps,
                        "" if name in PALAVERS else ratio(best["palaver-sqlite"], mine),
                        "" if name in PALAVERS else ratio(best["palaver-postgres"], mine)]))
    return out


def history_section(entries: dict) -> list[str]:
    out = [row(["server", "archived", "queries/s", "latest-50 p50 / p99 ms", "middle-50 p50 / p99 ms",
                "results/query", "errors", "p99 ratio (peer ÷ palaver-postgres)"]), row(["---"] * 8)]
    ref = entries.get("palaver-postgres", {}).get("result") or {}
    ref99 = max(ref.get("latest_p99_ms") or 0, ref.get("middle_p99_ms") or 0)
    for name, e in entries.items():
        r = e.get("result")
        if not r:
            out.append(row([name, "error: " + e.get("error", "?")[:120]] + [""] * 6))
            continue
        p99 = max(r.get("latest_p99_ms") or 0, r.get("middle_p99_ms") or 0)
        out.append(row([f"{name} ({e['version']})", fmt(r.get("messages")), fmt(r.get("queries_per_s")),
                        f"{fmt(r.get('latest_p50_ms'), 2)} / {fmt(r.get('latest_p99_ms'), 2)}",
                        f"{fmt(r.get('middle_p50_ms'), 2)} / {fmt(r.get('middle_p99_ms'), 2)}",
                        fmt(r.get("results_per_query")), fmt(r.get("errors")),
                        "" if name == "palaver-postgres" or not (p99 and ref99)
                        else "— (queries failed)" if r.get("errors") else ratio(p99, ref99)]))
    return out


SECTIONS = {"idle": idle_section, "fanout": stepped_section, "bigroom": stepped_section,
            "history": history_section, "sip": stepped_section}


def render(results: dict) -> str:
    lines = []
    m = results.get("_machine")
    if m:
        lines.append(f"Run {m['date']} on {m['cpus']} × {m['cpu']}, {m['mem_gib']} GiB, Linux {m['kernel']}, "
                     f"palaver {m['git']}, {m['postgres']}.")
    for scenario, fn in SECTIONS.items():
        entries = results.get(scenario)
        if not entries:
            continue
        size = results.get("_sizes", {}).get(scenario, {})
        lines += ["", f"### {scenario}" + (f" ({describe(scenario, size)})" if size else ""), ""]
        lines += fn(entries)
    notes: dict[str, list[str]] = {}
    for scenario in SECTIONS:
        for name, e in (results.get(scenario) or {}).items():
            notes.setdefault(name, [])
            notes[name] += [n for n in e.get("notes", []) if n not in notes[name]]
    if any(notes.values()):
        lines += ["", "### Settings", ""]
        lines += [f"- **{name}**: " + "; ".join(n) for name, n in notes.items() if n]
    return "\n".join(lines) + "\n"


def describe(scenario: str, s: dict) -> str:
    return {
        "idle": f"{s.get('idle_users', 0):,} users, STARTTLS, one room each (50 per room), 10 s hold, then a ping",
        "fanout": f"{s.get('fanout_rooms', 0):,} rooms × 20, rate stepped {s.get('fanout_rates')}, {s.get('duration')} s per step, pass = p99 ≤ 100 ms, no error, nothing missing",
        "bigroom": f"1 room × {s.get('bigroom_users', 0):,}, 10 posters, rate stepped {s.get('bigroom_rates')}",
        "history": f"{s.get('history_messages', 0):,} archived messages, 10 users × 5 queries/s, {s.get('duration')} s",
        "sip": f"{s.get('sip_rooms', 0)} rooms × 20 SIP users over UDP, rate stepped {s.get('sip_rates')}",
    }.get(scenario, "")
