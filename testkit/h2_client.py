"""One HTTP/2 request over cleartext (prior knowledge), with the exact
pseudo-headers and headers given, unchecked: what a hostile client sends
(`:method: trace`, `:scheme: https` on a plain connection, `\\` in
`:path`). Prints the response as JSON: {"status", "headers", "body"}.

Usage: h2_client.py PORT < request.json, where request.json is a list of
[name, value] pairs in order. Uses the `h2` package (PyPI) that `make
envoy` installs into .venv.
"""
import json
import socket
import sys

import h2.config
import h2.connection
import h2.events


def main():
    port = int(sys.argv[1])
    headers = [(n.encode(), v.encode()) for n, v in json.load(sys.stdin)]
    config = h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=False,
    )
    conn = h2.connection.H2Connection(config=config)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.initiate_connection()
    conn.send_headers(1, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, out_headers, body, done = None, [], b"", False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                for n, v in event.headers:
                    if n == b":status":
                        status = int(v)
                    else:
                        out_headers.append([n.decode(), v.decode("latin-1")])
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                done = True
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    sock.close()
    json.dump({"status": status, "headers": out_headers, "body": body.decode("latin-1")}, sys.stdout)


if __name__ == "__main__":
    main()
