#!/usr/bin/python3
"""The slixmpp scenario of palaver's end-to-end tests (issue: "Real components").

Two users, alice and bob, use slixmpp (Debian's python3-slixmpp) exactly as an ordinary XMPP
client would: STARTTLS trusting the dev CA, SCRAM-SHA-256, service discovery, MUC (XEP-0045)
and MAM (XEP-0313) with RSM paging.

    scenario.py phase1 --port P --ca CA.pem     # everything, then waits for the server to stop
    scenario.py phase2 --port P --ca CA.pem     # after the restart: is everything still there?

Output: one JSON object per line on stdout, {"event": NAME, ...}, for what the users saw; the
Rust test (tests/src/scenario.rs) asserts on them. The script also checks as it goes and ends
with {"event": "done"} and exit 0, or {"event": "fail", "error": ...} and exit 1.
phase1 prints {"event": "ready_for_restart"} and then waits (connected) for the server to shut
down: each user must get an unavailable presence with status 332 from each room, then lose
the connection.
"""

import argparse
import asyncio
import json
import logging
import sys
import traceback

import slixmpp
from slixmpp import JID

DOMAIN = "localhost"
STEP = 20  # seconds for one expected answer
LOBBY_MESSAGES = 120


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True, default=str), flush=True)


class ScenarioError(Exception):
    pass


def check(cond, what, **details):
    if not cond:
        raise ScenarioError(what + (" " + json.dumps(details, default=str) if details else ""))


class User(slixmpp.ClientXMPP):
    """One slixmpp client that records every message and presence it receives."""

    def __init__(self, name, password, host, port, ca):
        super().__init__(f"{name}@{DOMAIN}/e2e", password, sasl_mech="SCRAM-SHA-256")
        self.name = name
        self.target = (host, port)
        # Trust only the dev CA; certificate verification stays on (CERT_REQUIRED).
        self.ca_certs = ca
        self["feature_mechanisms"].unencrypted_plain = False
        for plugin in ("xep_0030", "xep_0004", "xep_0045", "xep_0059", "xep_0313",
                       "xep_0203", "xep_0359", "xep_0199"):
            self.register_plugin(plugin)
        self.messages = []
        self.presences = []
        self.changed = asyncio.Event()
        self.auth_failed = None
        # "message" is only for messages with a body; room subjects come separately.
        self.add_event_handler("message", self._on_message)
        self.add_event_handler("groupchat_subject", self._on_message)
        # slixmpp's MUC plugin marks room JIDs so that their presences skip the generic
        # "presence" event; they come as "groupchat_presence" instead.
        self.add_event_handler("presence", self._on_presence)
        self.add_event_handler("groupchat_presence", self._on_presence)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("session_start", self._on_session_start)

    # slixmpp resolves the JID's domain and uses port 5222 even when given an address; the
    # test server listens on 127.0.0.1 with a port chosen by the OS, so answer the lookup.
    async def get_dns_records(self, domain, port=None):
        return [(domain, self.target[0], self.target[1])]

    def _on_message(self, msg):
        self.messages.append(msg)
        self.changed.set()

    def _on_presence(self, pres):
        self.presences.append(pres)
        self.changed.set()

    def _on_failed_auth(self, *args):
        self.auth_failed = str(args)
        self.changed.set()

    async def _on_session_start(self, _event):
        self.send_presence()
        await self.get_roster(timeout=STEP)

    async def wait(self, what, pred, timeout=STEP):
        """Waits until pred() is truthy (re-checked on every received stanza)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            result = pred()
            if result:
                return result
            left = end - loop.time()
            if left <= 0:
                raise ScenarioError(f"{self.name}: timed out waiting for {what}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass

    def find_message(self, pred):
        for m in self.messages:
            if pred(m):
                return m
        return None

    def groupchat(self, room, nick=None, body=None):
        return [m for m in self.messages
                if m["type"] == "groupchat" and m["from"].bare == room
                and (nick is None or m["from"].resource == nick)
                and (body is None or m["body"] == body)]


async def login(name, password, args):
    user = User(name, password, "127.0.0.1", args.port, args.ca)
    user.connect(address=("127.0.0.1", args.port), force_starttls=True)
    loop = asyncio.get_running_loop()
    started = loop.create_future()
    user.add_event_handler("session_start", lambda _e: started.done() or started.set_result(True))
    def failed(what):
        return lambda *a: started.done() or started.set_exception(
            ScenarioError(f"{name}: {what}: {a!r}"))
    user.add_event_handler("failed_all_auth", failed("SASL authentication failed"))
    user.add_event_handler("ssl_invalid_chain", failed("the server certificate is not trusted"))
    user.add_event_handler("connection_failed", failed("cannot connect"))
    user.add_event_handler("stream_error", failed("stream error"))
    try:
        await asyncio.wait_for(started, STEP)
    except asyncio.TimeoutError:
        raise ScenarioError(f"{name}: no session within {STEP}s (connect/TLS/SASL/bind)")
    ssl_object = user.transport.get_extra_info("ssl_object") if user.transport else None
    mech = user["feature_mechanisms"].mech
    emit("login", who=name, jid=str(user.boundjid), mechanism=mech.name if mech else None,
         tls=ssl_object.version() if ssl_object else None)
    check(ssl_object is not None, f"{name}: the session is not encrypted")
    check(mech is not None and mech.name == "SCRAM-SHA-256", f"{name}: not SCRAM-SHA-256",
          mechanism=mech.name if mech else None)
    return user


async def disco_items(user, jid):
    iq = await user["xep_0030"].get_items(jid=jid, timeout=STEP)
    return [(str(i[0]), i[2]) for i in iq["disco_items"]["items"]]


async def disco_info(user, jid):
    iq = await user["xep_0030"].get_info(jid=jid, cached=False, timeout=STEP)
    info = iq["disco_info"]
    identities = [list(i) for i in info["identities"]]
    features = sorted(str(f) for f in info["features"])
    form = info.get_plugin("form", check=True)
    fields = {}
    if form is not None:
        fields = {k: (v if isinstance(v, (str, bool, int)) or v is None else list(v))
                  for k, v in form.get_values().items()}
    return identities, features, fields


async def find_muc_service(user):
    items = await disco_items(user, DOMAIN)
    emit("disco_server_items", who=user.name, items=[i[0] for i in items])
    for jid, _name in items:
        _ids, features, _f = await disco_info(user, jid)
        if "http://jabber.org/protocol/muc" in features:
            emit("muc_service", who=user.name, jid=jid)
            return jid
    raise ScenarioError("no MUC service in the server's disco#items", items=items)


async def list_rooms(user, service):
    rooms = await disco_items(user, service)
    emit("rooms", who=user.name, rooms=[r[0] for r in rooms], names=[r[1] for r in rooms])
    return [r[0] for r in rooms]


async def join_wait(user, room, nick, **kwargs):
    """slixmpp's own join (waits for the self-presence and the subject)."""
    pres, subject, occupants, history = await user["xep_0045"].join_muc_wait(
        JID(room), nick, timeout=STEP, **kwargs)
    emit("joined", who=user.name, room=room, nick=pres["from"].resource,
         codes=sorted(pres["muc"]["status_codes"]), role=pres["muc"]["role"],
         affiliation=pres["muc"]["affiliation"], subject=subject["subject"],
         occupants=sorted(p["from"].resource for p in occupants),
         history=[m["body"] for m in history])
    return pres, subject, occupants, history


async def create_room(user, room, nick):
    """Joins a room that does not exist yet: the self-presence must say 201 (created)."""
    muc = user["xep_0045"]
    muc.rooms[JID(room)] = {}
    muc.our_nicks[JID(room)] = nick
    before = len(user.presences)
    pres = user.make_presence(pto=f"{room}/{nick}")
    pres.enable("muc_join")
    pres["muc_join"]["history"]["maxstanzas"] = "0"
    pres.send()

    def self_presence():
        for p in user.presences[before:]:
            if p["from"].bare == room and (p["type"] == "error" or 110 in p["muc"]["status_codes"]):
                return p
        return None

    p = await user.wait(f"self-presence from {room}", self_presence)
    check(p["type"] != "error", f"creating {room} failed", error=p["error"]["condition"])
    codes = sorted(p["muc"]["status_codes"])
    emit("created", who=user.name, room=room, codes=codes, affiliation=p["muc"]["affiliation"],
         role=p["muc"]["role"])
    check(201 in codes, f"{room}: no status 201 on creation", codes=codes)
    return p


async def configure_room(user, room, title):
    form = await user["xep_0045"].get_room_config(JID(room), timeout=STEP)
    fields = form.get_fields()
    emit("config_form", who=user.name, room=room, fields=sorted(fields.keys()))
    wanted = {
        "muc#roomconfig_roomname": title,
        "muc#roomconfig_persistentroom": True,
        "muc#roomconfig_membersonly": False,
        "muc#roomconfig_publicroom": True,
    }
    for var, value in wanted.items():
        check(var in fields, f"the config form of {room} has no {var}", fields=sorted(fields))
        fields[var]["value"] = value
    await user["xep_0045"].set_room_config(JID(room), form, timeout=STEP)
    emit("configured", who=user.name, room=room, title=title)


async def mam_all(user, room, page=50):
    """Pages through the room's archive with RSM `after`, `page` messages at a time."""
    items, pages, after = [], [], None
    for _ in range(50):
        rsm = {"max": page}
        if after:
            rsm["after"] = after
        iq = await user["xep_0313"].retrieve(jid=JID(room), rsm=rsm, timeout=STEP)
        results = list(iq["mam"]["results"])
        fin = iq["mam_fin"]
        complete = fin.xml.get("complete") in ("true", "1")
        last = fin["rsm"]["last"]
        for m in results:
            fwd = m["mam_result"]["forwarded"]
            st = fwd["stanza"]
            items.append({"id": m["mam_result"]["id"], "nick": st["from"].resource,
                          "body": st["body"], "stamp": str(fwd["delay"]["stamp"])})
        pages.append(len(results))
        if complete or not results:
            break
        check(last, "an incomplete MAM page without <last/>", page=len(pages))
        after = last
    return items, pages


def check_lobby_archive(items, pages, who):
    bodies = [i["body"] for i in items]
    ids = [i["id"] for i in items]
    numbered = [b for b in bodies if b.startswith("msg ")]
    emit("mam", who=who, room="lobby", pages=pages, count=len(items), ids=ids, bodies=bodies)
    check(len(set(ids)) == len(ids), "duplicate MAM ids")
    check(numbered == [f"msg {i:03d}" for i in range(LOBBY_MESSAGES)],
          "the archive does not hold the numbered messages once each, in order",
          got=numbered[:5] + ["..."] + numbered[-5:], count=len(numbered))
    check(len(pages) >= 3 and all(p <= 50 for p in pages), "not paged by 50", pages=pages)


async def phase1(args):
    alice = await login("alice", args.alice_password, args)
    bob = await login("bob", args.bob_password, args)

    service = await find_muc_service(alice)
    rooms = await list_rooms(alice, service)
    lobby = f"lobby@{service}"
    check(lobby in rooms, "lobby is not listed", rooms=rooms)

    # Both join the lobby and see each other.
    await join_wait(alice, lobby, "alice", maxstanzas=0)
    _p, _s, occupants, _h = await join_wait(bob, lobby, "bob", maxstanzas=0)
    check("alice" in [p["from"].resource for p in occupants], "bob does not see alice in lobby")
    await alice.wait("bob's presence in lobby", lambda: any(
        p["from"] == JID(f"{lobby}/bob") and p["type"] != "unavailable" for p in alice.presences))
    emit("saw_presence", who="alice", occupant=f"{lobby}/bob")
    emit("saw_presence", who="bob", occupant=f"{lobby}/alice")

    # Groupchat both ways.
    alice.send_message(mto=lobby, mbody="hello from alice", mtype="groupchat")
    m = await bob.wait("alice's groupchat", lambda: bob.groupchat(lobby, "alice", "hello from alice"))
    emit("groupchat", who="bob", room=lobby, nick="alice", body=m[0]["body"],
         stanza_id=m[0].xml.find("{urn:xmpp:sid:0}stanza-id") is not None)
    bob.send_message(mto=lobby, mbody="hello from bob", mtype="groupchat")
    await alice.wait("bob's groupchat", lambda: alice.groupchat(lobby, "bob", "hello from bob"))
    emit("groupchat", who="alice", room=lobby, nick="bob", body="hello from bob")

    # Private messages between occupants (through the room).
    pm = alice.make_message(mto=f"{lobby}/bob", mbody="psst bob", mtype="chat")
    pm.enable("muc")
    pm.send()
    m = await bob.wait("alice's private message", lambda: bob.find_message(
        lambda x: x["type"] == "chat" and x["from"] == JID(f"{lobby}/alice") and x["body"] == "psst bob"))
    emit("private", who="bob", sender=str(m["from"]), body=m["body"])
    pm = bob.make_message(mto=f"{lobby}/alice", mbody="psst alice", mtype="chat")
    pm.enable("muc")
    pm.send()
    m = await alice.wait("bob's private message", lambda: alice.find_message(
        lambda x: x["type"] == "chat" and x["from"] == JID(f"{lobby}/bob") and x["body"] == "psst alice"))
    emit("private", who="alice", sender=str(m["from"]), body=m["body"])

    # A new reserved room, configured through the muc#roomconfig form.
    team = f"team@{service}"
    await create_room(alice, team, "alice")
    await configure_room(alice, team, "Team room")
    alice["xep_0045"].set_subject(JID(team), "Team business")
    await alice.wait("the team subject echo", lambda: alice.find_message(
        lambda x: x["from"].bare == team and x["subject"] == "Team business"))
    _p, subject, occupants, _h = await join_wait(bob, team, "bob", maxstanzas=0)
    check(subject["subject"] == "Team business", "bob did not get team's subject",
          subject=subject["subject"])
    check("alice" in [p["from"].resource for p in occupants], "bob does not see alice in team")
    await alice.wait("bob's presence in team", lambda: any(
        p["from"] == JID(f"{team}/bob") for p in alice.presences))
    emit("saw_presence", who="alice", occupant=f"{team}/bob")
    ids, features, fields = await disco_info(bob, team)
    emit("room_info", who="bob", room=team, identities=ids, features=features, fields=fields)

    # 120 messages in the lobby; bob sees them live, each with a stanza-id.
    for i in range(LOBBY_MESSAGES):
        alice.send_message(mto=lobby, mbody=f"msg {i:03d}", mtype="groupchat")
    live = await bob.wait("the 120 lobby messages", lambda: (
        lambda got: got if len(got) >= LOBBY_MESSAGES else None)(
        [m for m in bob.groupchat(lobby, "alice") if m["body"].startswith("msg ")]), timeout=60)
    live_ids = [m.xml.find("{urn:xmpp:sid:0}stanza-id").get("id")
                if m.xml.find("{urn:xmpp:sid:0}stanza-id") is not None else None for m in live]
    emit("live", who="bob", room=lobby, count=len(live), bodies=[m["body"] for m in live],
         stanza_ids=live_ids)
    await alice.wait("the echo of the last message", lambda: alice.groupchat(
        lobby, "alice", f"msg {LOBBY_MESSAGES - 1:03d}"), timeout=60)

    # bob pages through the archive: 50 at a time.
    items, pages = await mam_all(bob, lobby, 50)
    check_lobby_archive(items, pages, "bob")
    archived = {i["body"]: i["id"] for i in items}
    check(all(sid is not None for sid in live_ids), "a live message without a stanza-id")
    check([archived.get(m["body"]) for m in live] == live_ids,
          "MAM ids differ from the live stanza-ids")

    # Now the Rust side stops the server: each user must see status 332 from each room.
    marks = {u.name: len(u.presences) for u in (alice, bob)}
    # slixmpp replaces `disconnected` with a new future once it fires: keep these.
    gone = {u.name: u.disconnected for u in (alice, bob)}
    emit("ready_for_restart")
    for user in (alice, bob):
        for room in (lobby, team):
            def shutdown_presence(user=user, room=room):
                for p in user.presences[marks[user.name]:]:
                    if (p["from"] == JID(f"{room}/{user.name}") and p["type"] == "unavailable"
                            and 332 in p["muc"]["status_codes"]):
                        return p
                return None
            p = await user.wait(f"status 332 from {room}", shutdown_presence, timeout=60)
            emit("shutdown_presence", who=user.name, room=room,
                 codes=sorted(p["muc"]["status_codes"]))
    for user in (alice, bob):
        try:
            await asyncio.wait_for(asyncio.shield(gone[user.name]), 30)
        except asyncio.TimeoutError:
            raise ScenarioError(f"{user.name} was not disconnected by the shutdown")
        emit("disconnected", who=user.name)


async def phase2(args):
    alice = await login("alice", args.alice_password, args)
    bob = await login("bob", args.bob_password, args)
    service = await find_muc_service(bob)
    rooms = await list_rooms(bob, service)
    lobby, team = f"lobby@{service}", f"team@{service}"
    check(lobby in rooms and team in rooms, "lobby and team are not both listed", rooms=rooms)

    ids, features, fields = await disco_info(bob, team)
    emit("room_info", who="bob", room=team, identities=ids, features=features, fields=fields)
    check(any(i[3] == "Team room" for i in ids if len(i) > 3), "team lost its title",
          identities=ids)
    check("muc_persistent" in features, "team is not persistent", features=features)

    items, pages = await mam_all(bob, lobby, 50)
    check_lobby_archive(items, pages, "bob")

    # Affiliation and subject survived; history on join works.
    pres, subject, _o, _h = await join_wait(alice, team, "alice", maxstanzas=0)
    check(pres["muc"]["affiliation"] == "owner", "alice is no longer team's owner",
          affiliation=pres["muc"]["affiliation"])
    check(subject["subject"] == "Team business", "team lost its subject", subject=subject["subject"])
    _p, _s, _o, history = await join_wait(bob, lobby, "bob", maxstanzas=5)
    await join_wait(alice, lobby, "alice", maxstanzas=0)

    # The room still works.
    alice.send_message(mto=lobby, mbody="after restart", mtype="groupchat")
    await bob.wait("alice's message after the restart",
                   lambda: bob.groupchat(lobby, "alice", "after restart"))
    emit("groupchat", who="bob", room=lobby, nick="alice", body="after restart")

    gone = [u.disconnected for u in (alice, bob)]
    for user in (alice, bob):
        user.disconnect()
    try:
        await asyncio.wait_for(asyncio.gather(*gone), STEP)
    except asyncio.TimeoutError:
        pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["phase1", "phase2"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--alice-password", default="alice-secret")
    parser.add_argument("--bob-password", default="bob-secret")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emit("start", phase=args.phase, slixmpp=slixmpp.__version__)
    try:
        await (phase1(args) if args.phase == "phase1" else phase2(args))
    except Exception as e:  # noqa: BLE001 - everything is reported the same way
        emit("fail", error=f"{type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stderr)
        return 1
    emit("done", phase=args.phase)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
