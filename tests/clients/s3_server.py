#!/usr/bin/env python3
"""A real S3-compatible service for the file-store tests: moto's server (PyPI `moto[s3,server]`),
on 127.0.0.1 and a free port, with one empty bucket.

    s3_server.py --bucket NAME

Prints {"event": "ready", "endpoint": "http://127.0.0.1:PORT"} and serves until its standard
input closes or it reads a command line. Commands (JSON lines on stdin):

    {"cmd": "list", "prefix": P}  ->  {"event": "objects", "keys": [...], "sizes": [...]}
"""

import argparse
import json
import sys

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bucket", required=True)
    args = ap.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=args.bucket)
    print(json.dumps({"event": "ready", "endpoint": endpoint}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "list":
            listing = s3.list_objects_v2(Bucket=args.bucket, Prefix=cmd.get("prefix", ""))
            objects = listing.get("Contents", [])
            print(
                json.dumps(
                    {
                        "event": "objects",
                        "keys": [o["Key"] for o in objects],
                        "sizes": [o["Size"] for o in objects],
                    }
                ),
                flush=True,
            )
    server.stop()


if __name__ == "__main__":
    main()
