"""A loopback HTTPS upstream that records what reached it: the server name
each TLS client asked for (SNI), and each HTTP request that got through the
handshake (method, target, headers in order). Answers 200 `ok` to every
request.

Usage: tls_upstream.py CERT KEY RECORD
Binds 127.0.0.1 on a port the system chooses and prints it on the first
line of standard output; appends one JSON object per line to RECORD:
{"sni": name-or-null} per handshake that reached the server name callback,
{"method", "target", "headers": [[name, value], ...]} per request. Exits
when its standard input closes (the test that started it is gone).
Standard library only (testkit/src/tls.rs starts it).
"""
import http.server
import json
import os
import ssl
import sys
import threading


def main():
    cert, key, record = sys.argv[1], sys.argv[2], sys.argv[3]
    lock = threading.Lock()

    def write(obj):
        with lock, open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda _sock, name, _ctx: write({"sni": name})

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one_request(self):
            try:
                super().handle_one_request()
            except (ssl.SSLError, ConnectionError):
                self.close_connection = True

        def answer(self):
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            write({
                "method": self.command,
                "target": self.path,
                "headers": [[n.lower(), v] for n, v in self.headers.items()],
            })
            body = b"ok"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = answer

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, addr = self.socket.accept()
            # The handshake in the connection's thread: a client that
            # refuses the certificate never blocks the next one.
            return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

        def process_request_thread(self, request, client_address):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                self.shutdown_request(request)
                return
            super().process_request_thread(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
