#!/usr/bin/python3
"""An interactive slixmpp MUC occupant for palaver's cross-protocol tests.

    muc_peer.py [--host 127.0.0.2] --port P --ca CA.pem --user bob --password pw --room lobby --nick bob

Logs in (STARTTLS trusting the dev CA, SCRAM-SHA-256), joins ROOM@conference.localhost as NICK
and then reports, one JSON object per line on stdout:

    {"event": "joined", "occupants": [nicks present, us included]}
    {"event": "presence", "nick": N, "type": "available"|"unavailable", "codes": [...]}
    {"event": "groupchat", "nick": N, "body": B, "delayed": bool, "t": unix time}
    {"event": "subject", "nick": N, "subject": S}
    {"event": "sent", "body": B, "t": unix time}
    {"event": "archive", "bodies": [...]}          (answer to "mam")
    {"event": "done"} / {"event": "fail", "error": ...}

It obeys JSON lines on stdin: {"cmd": "send", "body": B}, {"cmd": "mam", "max": N} (the room's
first N archived messages, XEP-0313), {"cmd": "quit"} (leave and disconnect). End of input
also quits.
"""

import argparse
import asyncio
import json
import logging
import sys
import time

import slixmpp

DOMAIN = "localhost"
STEP = 20


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True, default=str), flush=True)


class Peer(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(f"{args.user}@{DOMAIN}/peer", args.password, sasl_mech="SCRAM-SHA-256")
        self.args = args
        self.room = f"{args.room}@conference.{DOMAIN}"
        self.ca_certs = args.ca
        self["feature_mechanisms"].unencrypted_plain = False
        for plugin in ("xep_0030", "xep_0004", "xep_0045", "xep_0059", "xep_0313", "xep_0203",
                       "xep_0359"):
            self.register_plugin(plugin)
        self.add_event_handler("groupchat_message", self._on_groupchat)
        self.add_event_handler("groupchat_presence", self._on_presence)
        self.add_event_handler("groupchat_subject", self._on_subject)

    async def get_dns_records(self, domain, port=None):
        return [(domain, self.args.host, self.args.port)]

    def _on_groupchat(self, msg):
        if not msg["body"]:
            return
        delayed = bool(msg["delay"]["stamp"]) if msg.get_plugin("delay", check=True) else False
        emit("groupchat", nick=msg["from"].resource, body=msg["body"], delayed=delayed,
             t=time.time())

    def _on_presence(self, pres):
        if pres["from"].bare != self.room:
            return
        codes = sorted(int(s) for s in pres["muc"]["status_codes"]) if pres["muc"] else []
        kind = "unavailable" if pres["type"] == "unavailable" else "available"
        emit("presence", nick=pres["from"].resource, type=kind, codes=codes)

    def _on_subject(self, msg):
        emit("subject", nick=msg["from"].resource, subject=msg["subject"])


async def main(args):
    peer = Peer(args)
    started = asyncio.get_running_loop().create_future()
    peer.add_event_handler("session_start",
                           lambda _e: started.done() or started.set_result(True))
    peer.add_event_handler("failed_all_auth",
                           lambda *a: started.done() or started.set_exception(
                               RuntimeError("authentication failed")))
    peer.connect(address=(args.host, args.port), force_starttls=True)
    await asyncio.wait_for(started, STEP)
    peer.send_presence()
    await peer.plugin["xep_0045"].join_muc_wait(peer.room, args.nick, maxstanzas=0, timeout=STEP)
    roster = list(peer.plugin["xep_0045"].get_roster(peer.room) or [])
    emit("joined", occupants=sorted(roster))
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "send":
            peer.send_message(mto=peer.room, mbody=cmd["body"], mtype="groupchat")
            emit("sent", body=cmd["body"], t=time.time())
        elif cmd["cmd"] == "mam":
            iq = await peer["xep_0313"].retrieve(jid=slixmpp.JID(peer.room),
                                                 rsm={"max": cmd["max"]},
                                                 timeout=STEP)
            bodies = [m["mam_result"]["forwarded"]["stanza"]["body"]
                      for m in iq["mam"]["results"]]
            emit("archive", bodies=bodies)
        elif cmd["cmd"] == "quit":
            break
    peer.plugin["xep_0045"].leave_muc(peer.room, args.nick)
    await asyncio.sleep(0.2)
    peer.disconnect()
    emit("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("ca", "user", "password", "room", "nick"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="the server's loopback address")
    logging.basicConfig(level=logging.ERROR)
    try:
        asyncio.run(main(parser.parse_args()))
    except Exception as e:  # reported to the Rust test, which prints stderr too
        emit("fail", error=repr(e))
        sys.exit(1)
