#!/usr/bin/python3
"""Drives the real pidgin-sipe (libsipe.so in console Pidgin, finch) against palaver over SIP/TCP.

    finch_sipe.py --port P [--host 127.0.0.1] [--user alice] [--password pw] [--room lobby]
                  [--send BODY] [--expect BODY] [--timeout 60] [--keep DIR]

It writes a throw-away purple config (account `USER@localhost,USER`, transport tcp, server
HOST:PORT, a blist.xml chat `ma-chan://localhost/ROOM` with gnt-autojoin), starts finch in a
detached tmux session with sipe's unsafe debug on, reads the SIP traffic sipe logs, and
reports one JSON object per line on stdout:

    {"event": "registered"}                            a 200 to REGISTER reached sipe
    {"event": "reply", "id": "rpl:requri", "code": "200"}   each XCCOS rpl:/ntc: sipe received
    {"event": "joined", "room": "ma-chan://…", "name": N, "users": N}   rpl:bjoin/rpl:join
    {"event": "sent", "body": B}                       --send typed into the room window
    {"event": "history", "author": "sip:…", "body": B}      each message of rpl:bccontext
    {"event": "groupchat", "author": "sip:…", "body": B}    every grpchat sipe received
    {"event": "done"} / {"event": "fail", "error": …, "seen": [...]}

It also obeys JSON lines on stdin: {"cmd": "send", "body": B}, {"cmd": "quit"}. Without stdin
commands it quits after --expect was seen (or right after --send/the join when no --expect).
Exit status 0 on "done".

One work-around is applied: Debian 12's libxml2 (2.9.14+dfsg-1.3~deb12u3 and later) ignores
the SAX1 startElement callbacks pidgin-sipe 1.25 registers, so sipe_xml_parse() returns NULL for
every body. A tiny LD_PRELOAD library (compiled here with gcc against libxml2's headers) marks
such handlers as SAX1. Nothing stands between finch and palaver: the REGISTER challenge (407 for
sipe), the in-band provisioning that turns sipe's group chat on, and XCCOS are palaver's own.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

DOMAIN = "localhost"
NS = "{urn:parlano:xml:ns:xccos}"

SAX1FIX_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libxml/parser.h>
int xmlSAXUserParseMemory(xmlSAXHandlerPtr sax, void *user_data, const char *buffer, int size)
{
	static int (*real)(xmlSAXHandlerPtr, void *, const char *, int);
	xmlSAXHandler copy;
	if (!real)
		real = (int (*)(xmlSAXHandlerPtr, void *, const char *, int))
			dlsym(RTLD_NEXT, "xmlSAXUserParseMemory");
	if (sax && sax->initialized == XML_SAX2_MAGIC && !sax->startElementNs && sax->startElement) {
		copy = *sax;
		copy.initialized = 1;
		sax = &copy;
	}
	return real(sax, user_data, buffer, size);
}
"""


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True), flush=True)


def write_config(cfg, args, server):
    account = f"{args.user}@{DOMAIN},{args.user}"
    with open(os.path.join(cfg, "accounts.xml"), "w") as f:
        f.write(f"""<?xml version='1.0' encoding='UTF-8' ?>
<account version='1.0'>
 <account>
  <protocol>prpl-sipe</protocol>
  <name>{account}</name>
  <password>{args.password}</password>
  <settings>
   <setting name='server' type='string'>{server}</setting>
   <setting name='transport' type='string'>tcp</setting>
   <setting name='authentication' type='string'>ntlm</setting>
   <setting name='dont-publish' type='bool'>1</setting>
  </settings>
  <settings ui='gnt-purple'>
   <setting name='auto-login' type='bool'>1</setting>
  </settings>
 </account>
</account>
""")
    with open(os.path.join(cfg, "blist.xml"), "w") as f:
        f.write(f"""<?xml version='1.0' encoding='UTF-8' ?>
<purple version='1.0'>
 <blist>
  <group name='Group Chats'>
   <chat proto='prpl-sipe' account='{account}'>
    <component name='uri'>ma-chan://{DOMAIN}/{args.room}</component>
    <setting name='gnt-autojoin' type='bool'>1</setting>
   </chat>
  </group>
 </blist>
</purple>
""")


class DebugLog:
    """Follows finch's stderr (purple debug with sipe's unsafe SIP traces)."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.pending = ""
        self.message = None  # lines of the SIP message being read (incoming only)

    def poll(self):
        """New incoming SIP messages (as text) since the last call."""
        try:
            with open(self.path, "r", errors="replace") as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return []
        out = []
        self.pending += data
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.startswith("MESSAGE START <<<<<<<<<<"):
                self.message = []
            elif line.startswith("MESSAGE END <<<<<<<<<<"):
                if self.message is not None:
                    out.append("\n".join(self.message))
                self.message = None
            elif self.message is not None:
                self.message.append(line)
        return out


def xccos_events(text):
    """(kind, fields) for the XCCOS payload of an incoming INFO."""
    start = text.find("<xccos")
    if start < 0:
        return []
    try:
        root = ET.fromstring(text[start:].strip())
    except ET.ParseError:
        return [("bad-xccos", {"text": text[start:start + 200]})]
    events = []
    for node in root:
        tag = node.tag.replace(NS, "")
        if tag in ("rpl", "ntc"):
            resp = node.find(NS + "resp")
            events.append(("reply", {"id": node.get("id"),
                                     "code": resp.get("code") if resp is not None else None}))
            chanib = node.find(f"{NS}data/{NS}chanib")
            if node.get("id") in ("rpl:bjoin", "rpl:join") and chanib is not None:
                users = len(node.findall(f"{NS}data/{NS}uib"))
                events.append(("joined", {"room": chanib.get("uri"), "users": users,
                                          "name": chanib.get("name")}))
            if node.get("id") == "rpl:bccontext" and chanib is not None:
                for msg in chanib.findall(NS + "msg"):
                    chat = msg.find(NS + "chat")
                    events.append(("history", {"author": msg.get("author"),
                                               "body": chat.text if chat is not None else ""}))
        elif tag == "grpchat":
            chat = node.find(NS + "chat")
            events.append(("groupchat", {"author": node.get("author"),
                                         "room": node.get("chanUri"),
                                         "body": chat.text if chat is not None else ""}))
    return events


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)


def focus_room_window(session, room_title, tries=20):
    """Cycles finch's windows (Alt+n) until the room's conversation window has the focus."""
    for _ in range(tries):
        screen = tmux("capture-pane", "-t", session, "-p", "-e").stdout.replace("\x0f", "")
        focused = re.findall("\x1b\\[37m\x1b\\[44m([^\x1b_]+)", screen)
        if any(t.startswith(room_title) for t in focused):
            return True
        tmux("send-keys", "-t", session, "M-n")
        time.sleep(0.5)
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="palaver's SIP TCP port")
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="pw")
    p.add_argument("--room", default="lobby")
    p.add_argument("--send")
    p.add_argument("--expect")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--keep", help="keep the purple config and the debug log in this dir")
    args = p.parse_args()

    for tool in ("finch", "tmux", "gcc"):
        if not shutil.which(tool):
            emit("fail", error=f"{tool} not found")
            return 2
    if not os.path.exists("/usr/lib/purple-2/libsipe.so"):
        emit("fail", error="pidgin-sipe (libsipe.so) not installed")
        return 2

    work = args.keep or tempfile.mkdtemp(prefix="finch-sipe-")
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "purple")
    shutil.rmtree(cfg, ignore_errors=True)
    os.makedirs(cfg)
    fix_c = os.path.join(work, "sax1fix.c")
    fix_so = os.path.join(work, "sax1fix.so")
    with open(fix_c, "w") as f:
        f.write(SAX1FIX_C)
    cflags = subprocess.run(["pkg-config", "--cflags", "libxml-2.0"], capture_output=True,
                            text=True).stdout.split() or ["-I/usr/include/libxml2"]
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", fix_so, fix_c, *cflags, "-ldl"], check=True)

    write_config(cfg, args, f"{args.host}:{args.port}")

    debug = os.path.join(work, "finch.debug")
    session = f"finch-sipe-{os.getpid()}"
    env = (f"LD_PRELOAD={fix_so} PURPLE_UNSAFE_DEBUG=1 PURPLE_VERBOSE_DEBUG=1")
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40",
         f"env {env} finch -c {cfg} -d 2>{debug}")

    commands = []

    def read_stdin():
        for line in sys.stdin:
            try:
                commands.append(json.loads(line))
            except ValueError:
                pass
        commands.append({"cmd": "eof"})

    if not sys.stdin.isatty():
        threading.Thread(target=read_stdin, daemon=True).start()

    log = DebugLog(debug)
    seen = []
    joined = False
    expect_seen = args.expect is None
    echo_pending = set()  # bodies typed whose grpchat echo has not come back yet
    stdin_open = not sys.stdin.isatty()
    deadline = time.monotonic() + args.timeout
    room_title = args.room.capitalize()
    status = 1
    try:
        while time.monotonic() < deadline:
            for text in log.poll():
                first = text.split("\n", 1)[0]
                if first.startswith("SIP/2.0 200") and re.search(r"(?m)^CSeq: \d+ REGISTER",
                                                                  text):
                    if "registered" not in seen:
                        seen.append("registered")
                        emit("registered")
                if first.startswith("INFO "):
                    for kind, fields in xccos_events(text):
                        seen.append(fields.get("id") or kind)
                        if kind == "joined":
                            joined = True
                            room_title = fields.get("name") or room_title
                        if kind == "groupchat":
                            if fields["body"] == args.expect:
                                expect_seen = True
                            echo_pending.discard(fields["body"])
                        emit(kind, **fields)
            if joined and args.send is not None:
                time.sleep(1)
                if not focus_room_window(session, room_title):
                    emit("fail", error="room window never got the focus", seen=seen)
                    return 1
                tmux("send-keys", "-t", session, "-l", args.send)
                tmux("send-keys", "-t", session, "Enter")
                emit("sent", body=args.send)
                echo_pending.add(args.send)
                args.send = None
            while commands:
                cmd = commands.pop(0)
                if cmd.get("cmd") == "send" and joined:
                    focus_room_window(session, room_title)
                    tmux("send-keys", "-t", session, "-l", cmd["body"])
                    tmux("send-keys", "-t", session, "Enter")
                    emit("sent", body=cmd["body"])
                elif cmd.get("cmd") == "send":
                    commands.insert(0, cmd)
                    break
                elif cmd.get("cmd") == "quit":
                    emit("done")
                    status = 0
                    return 0
                elif cmd.get("cmd") == "eof":
                    stdin_open = False
            if joined and expect_seen and args.send is None and not echo_pending \
                    and not stdin_open and not commands:
                emit("done")
                status = 0
                return 0
            time.sleep(0.2)
        emit("fail", error="timeout", seen=seen)
        return 1
    finally:
        tmux("kill-session", "-t", session)
        if not args.keep and status == 0:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep:
            print(f"finch_sipe: logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
