#!/usr/bin/env python3
"""Example upstream for `make run` and docker-compose: answers every request
with a JSON echo of what it received (method, path, headers), and sets two
response headers so the response allow-list can be seen at work."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_bytes": len(body),
        }
        out = json.dumps(doc, indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.send_header("set-cookie", "upstream-session=1")
        self.send_header("x-upstream-internal", "stripped-by-the-gateway")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: " + (fmt % args) + "\n")


if __name__ == "__main__":
    port = int(os.environ.get("ECHO_PORT", "8081"))
    ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
