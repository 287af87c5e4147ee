#!/usr/bin/python3
"""XEP-0363 HTTP File Upload with slixmpp's own plugin (xep_0363, which PUTs with aiohttp).

    upload.py [--host 127.0.0.2] --port P --ca CA.pem --user alice --password pw --file PATH [--slot-only SIZE]

Logs in (STARTTLS trusting the dev CA), asks upload.localhost for disco#info and reports it,
then uploads FILE with the plugin (or, with --slot-only, only asks for a slot of SIZE bytes
for FILE's name). One JSON object per line on stdout:

    {"event": "service", "features": [...], "identities": [[cat, type]], "max": N}
    {"event": "uploaded", "url": GET_URL}
    {"event": "slot", "put": PUT_URL, "get": GET_URL}
    {"event": "refused", "condition": C, "text": T, "max": N or null}
    {"event": "done"} / {"event": "fail", "error": ...}

slixmpp 1.8.3's service discovery across the domain's items (find_upload_service) does not run
on Python 3.11, so the script asks upload.localhost directly, as a client configured with the
service's address does, and hands the plugin what it found.
"""

import argparse
import asyncio
import json
import os
import sys

import slixmpp
from slixmpp.exceptions import IqError

DOMAIN = "localhost"
UPLOAD = "upload." + DOMAIN
STEP = 30


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True, default=str), flush=True)


class Uploader(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(f"{args.user}@{DOMAIN}/upload", args.password)
        self.args = args
        self.ca_certs = args.ca
        self.failed = False
        for plugin in ("xep_0030", "xep_0004", "xep_0363"):
            self.register_plugin(plugin)
        self.add_event_handler("session_start", self.start)

    async def get_dns_records(self, domain, port=None):
        return [(domain, self.args.host, self.args.port)]

    async def start(self, _event):
        try:
            await self.run()
            emit("done")
        except IqError as e:
            err = e.iq["error"]
            limit = None
            tag = err.xml.find("{urn:xmpp:http:upload:0}file-too-large")
            if tag is not None:
                limit = int(tag.findtext("{urn:xmpp:http:upload:0}max-file-size"))
            emit("refused", condition=err["condition"], text=err["text"], max=limit)
            emit("done")
        except Exception as e:  # reported, and the exit status says so
            self.failed = True
            emit("fail", error=repr(e))
        finally:
            self.disconnect()

    async def run(self):
        info = await self["xep_0030"].get_info(jid=UPLOAD, timeout=STEP)
        disco = info["disco_info"]
        limit = None
        for form in disco.iterables:
            values = form["values"]
            if values.get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                limit = int(values["max-file-size"])
        emit("service", features=sorted(disco["features"]),
             identities=[[i[0], i[1]] for i in disco["identities"]], max=limit)
        plugin = self["xep_0363"]
        plugin.upload_service = info["from"]
        plugin.max_file_size = float("+inf")  # let the server judge the size
        name = os.path.basename(self.args.file)
        if self.args.slot_only is not None:
            iq = await plugin.request_slot(info["from"], name, self.args.slot_only,
                                           "application/octet-stream", timeout=STEP)
            slot = iq["http_upload_slot"]
            emit("slot", put=slot["put"]["url"], get=slot["get"]["url"])
            return
        url = await plugin.upload_file(self.args.file, domain=UPLOAD, timeout=STEP)
        emit("uploaded", url=url)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--slot-only", type=int)
    args = p.parse_args()
    # aiohttp's default TLS context reads the trust store named here.
    os.environ["SSL_CERT_FILE"] = args.ca
    client = Uploader(args)
    client.connect()
    client.loop.run_until_complete(client.disconnected)
    sys.exit(1 if client.failed else 0)


if __name__ == "__main__":
    main()
