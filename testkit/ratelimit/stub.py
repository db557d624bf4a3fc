"""A stand-in for Envoy's rate limit service (envoyproxy/ratelimit), for
tests only: it cannot be installed here. It is not that service and not a
replacement for it.

It serves envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit over
gRPC (h2c) on 127.0.0.1, records every request it receives (domain and
descriptors, one JSON line each, in --record), and answers from the
configuration `backstage-proxy-wasm ratelimit-config` writes (--config):
a descriptor's entries are walked down the configuration's tree (an entry
matches a node with the same key and value, or with the same key and no
value, which counts each value apart), a descriptor that ends on a node
with a rate_limit is counted in a fixed window of that unit, and it is
over limit past requests_per_unit. Counters live in memory, in one
process: that is the part Redis plays in the real service.

Usage: stub.py [--port N] --config FILE --record FILE (prints 'ready PORT')
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
UNIT_ENUM = {"second": 1, "minute": 2, "hour": 3, "day": 4}


def compile_proto():
    """The hand-written proto, compiled with grpcio-tools into a temporary
    directory, imported from there."""
    out = tempfile.mkdtemp(prefix="rls-stub-")
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{HERE}", f"-I{include}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        os.path.join(HERE, "rls.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    import rls_pb2, rls_pb2_grpc  # noqa: E401
    return rls_pb2, rls_pb2_grpc


def find_limit(config, entries):
    """The rate_limit a descriptor ends on, or None."""
    nodes = config.get("descriptors") or []
    node = None
    for key, value in entries:
        match = None
        for n in nodes:
            if n.get("key") == key and n.get("value") == value:
                match = n
                break
        if match is None:
            for n in nodes:
                if n.get("key") == key and n.get("value") is None:
                    match = n
                    break
        if match is None:
            return None
        node = match
        nodes = match.get("descriptors") or []
    return node.get("rate_limit") if node else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", required=True)
    ap.add_argument("--record", required=True)
    args = ap.parse_args()
    pb, pb_grpc = compile_proto()
    with open(args.config) as f:
        config = yaml.safe_load(f)
    counters = {}
    lock = threading.Lock()

    class Service(pb_grpc.RateLimitServiceServicer):
        def ShouldRateLimit(self, request, context):
            descriptors = [[(e.key, e.value) for e in d.entries] for d in request.descriptors]
            with open(args.record, "a") as rec:
                rec.write(json.dumps({
                    "domain": request.domain,
                    "descriptors": descriptors,
                    "hits_addend": request.hits_addend,
                }) + "\n")
            hits = request.hits_addend or 1
            now = time.time()
            statuses = []
            overall = pb.RateLimitResponse.OK
            with lock:
                for entries in descriptors:
                    limit = find_limit(config, entries) if request.domain == config.get("domain") else None
                    if limit is None:
                        statuses.append(pb.RateLimitResponse.DescriptorStatus(code=pb.RateLimitResponse.OK))
                        continue
                    unit = UNITS[limit["unit"]]
                    window = int(now // unit)
                    key = (json.dumps(entries), window)
                    counters[key] = counters.get(key, 0) + hits
                    per = int(limit["requests_per_unit"])
                    over = counters[key] > per
                    reset = unit - (now % unit)
                    status = pb.RateLimitResponse.DescriptorStatus(
                        code=pb.RateLimitResponse.OVER_LIMIT if over else pb.RateLimitResponse.OK,
                        current_limit=pb.RateLimitResponse.RateLimit(
                            requests_per_unit=per, unit=UNIT_ENUM[limit["unit"]]),
                        limit_remaining=max(per - counters[key], 0),
                    )
                    status.duration_until_reset.seconds = int(reset)
                    status.duration_until_reset.nanos = int((reset % 1) * 1e9)
                    statuses.append(status)
                    if over:
                        overall = pb.RateLimitResponse.OVER_LIMIT
            return pb.RateLimitResponse(overall_code=overall, statuses=statuses)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_RateLimitServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"ready {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
