#!/usr/bin/env python3
"""A local stand-in for the Hugging Face Hub's file endpoint, for tests that must exercise
prunelab's download path without a network (scripts/kill_resume.sh --hub).

Serves the files of one local directory as one model repository:

    GET {endpoint}/{repo}/resolve/{revision}/{file}

with what `hf-hub` 0.4 reads from the real Hub: `X-Repo-Commit`, `ETag` (the file's sha256, as for
LFS files), and `Range` requests answered with 206 and `Content-Range` (it asks for byte 0 first
to learn the size, then resumes from where a partial download stopped). Missing files are 404s.
`--rate` throttles the body (bytes per second), so that a download takes long enough to be
interrupted.

    python3 scripts/fake_hub.py --dir MODEL_DIR --repo org/name --port 8765 [--rate 8000000]

Prints "serving on PORT" once it listens; logs one line per request on stderr.
"""

import argparse
import hashlib
import http.server
import os
import re
import sys
import time

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="directory whose files the repository holds")
    ap.add_argument("--repo", required=True, help="repository id, e.g. org/name")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--rate", type=float, default=0, help="bytes per second (0: unthrottled)")
    args = ap.parse_args()

    files = {}
    for name in sorted(os.listdir(args.dir)):
        path = os.path.join(args.dir, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                files[name] = (path, os.path.getsize(path), hashlib.sha256(f.read()).hexdigest())
    route = re.compile(r"^/" + re.escape(args.repo) + r"/resolve/[^/]+/(.+)$")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self):
            self.answer(body=False)

        def do_GET(self):
            self.answer(body=True)

        def answer(self, body):
            m = route.match(self.path.split("?")[0])
            entry = files.get(m.group(1)) if m else None
            if entry is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, size, sha = entry
            start, end = 0, size - 1
            rng = self.headers.get("Range")
            if rng:
                r = re.match(r"bytes=(\d*)-(\d*)", rng)
                if r and r.group(1):
                    start = int(r.group(1))
                    end = min(int(r.group(2)), size - 1) if r.group(2) else size - 1
            if start > end and size > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.log_message("%s: bytes %d-%d of %d", m.group(1), start, end, size)
            self.send_response(206 if rng else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{sha}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if not body:
                return
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                chunk = 256 * 1024
                while left > 0:
                    data = f.read(min(chunk, left))
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    left -= len(data)
                    if args.rate > 0:
                        time.sleep(len(data) / args.rate)

        def log_message(self, fmt, *a):
            sys.stderr.write("fake_hub: " + (fmt % a) + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"serving on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
