#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind inside Envoy:
bare Envoy, a no-op Rust proxy-wasm filter, and the filter (static token and
cached ES256 user token). Unlike requests per second on a shared machine,
the count repeats to within a fraction of a percent, so it shows the effect
of a change to the filter. Run by `make bench-instructions`.

Each gateway runs under callgrind with one worker; 2,000 requests warm it up
(V8 compiles and tiers up the module), the counters are zeroed, 1,000
sequential keep-alive requests are counted, and the total is divided by
1,000. Everything Envoy's threads execute in that window counts.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENVOY = os.environ.get("ENVOY_BIN", "envoy")
WASM = os.environ.get("WASM", str(ROOT / "build/plugin.wasm"))
# The native dynamic module (`make native`): its rows beside the Wasm filter's.
NATIVE = os.environ.get("NATIVE", str(ROOT / "build/libbackstage_proxy.so"))
CLI = ROOT / "target/release/backstage-proxy-wasm"
NOOP = ROOT / "bench/noop-filter/target/wasm32-wasip1/release/noop_filter.wasm"
# The native module built with `bench-noop` (its hooks return at once):
# what any dynamic module costs this Envoy, the floor under ours.
NATIVE_NOOP = os.environ.get(
    "NATIVE_NOOP", str(ROOT / "target/bench-noop/release/libbackstage_proxy_native.so"))
STATIC = "static-bench-token-0123"
WARM, COUNT = 2000, 1000


# ES256 for the cached-user-token row, in plain Python integers (P-256,
# FIPS 186-4), so this script needs no crypto package: one key, two
# signatures per run.
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        m = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, P) % P
    else:
        m = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (m * m - a[0] - b[0]) % P
    return x, (m * (a[0] - x) - a[1]) % P


def _mul(k, pt):
    out = None
    while k:
        if k & 1:
            out = _add(out, pt)
        pt = _add(pt, pt)
        k >>= 1
    return out


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _jws(d, header, payload):
    signing = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    z = int.from_bytes(hashlib.sha256(signing.encode()).digest(), "big")
    while True:
        k = secrets.randbelow(N - 1) + 1
        r = _mul(k, G)[0] % N
        s = pow(k, -1, N) * (z + r * d) % N
        if r and s:
            return signing + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def user_token_and_jwks(base_url):
    """A Backstage user token (as auth-backend issues it) and its key set."""
    d = secrets.randbelow(N - 1) + 1
    x, y = _mul(d, G)
    jwk = {"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "bench", "use": "sig",
           "x": _b64(x.to_bytes(32, "big")), "y": _b64(y.to_bytes(32, "big"))}
    now = int(time.time())
    sub = "user:default/bench"
    header = {"typ": "vnd.backstage.user", "alg": "ES256", "kid": "bench"}
    limited = _jws(d, {"typ": "vnd.backstage.limited-user", "alg": "ES256", "kid": "bench"},
                   {"sub": sub, "iat": now, "exp": now + 86400})
    payload = {"iss": base_url + "/api/auth", "sub": sub, "ent": [sub], "aud": "backstage",
               "iat": now, "exp": now + 86400, "uip": limited.rsplit(".", 1)[1]}
    return _jws(d, header, payload), json.dumps({"keys": [jwk]})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(admin, proc, seconds=180, interval=1.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"Envoy exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", admin, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(interval)
    raise SystemExit("Envoy did not become ready")


def drive(port, n, token, path="/api/proxy/svc/x", extra=()):
    c = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": "Bearer " + token}
    headers.update(extra)
    bad = 0
    for _ in range(n):
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        bad += r.status != 200
    if bad:
        raise SystemExit(f"{bad} of {n} requests were not answered 200")


def prime(port, token, path, extra, attempts=20):
    """The first request that needs a key set or a permission answer waits
    for a callout, which valgrind can slow past its timeout: retried until
    one is answered 200, before anything is counted."""
    headers = {"Authorization": "Bearer " + token}
    headers.update(extra)
    for _ in range(attempts):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status == 200:
            return
        time.sleep(1)
    raise SystemExit(f"no request was answered 200 in {attempts} attempts")


def native_config(upstream, port, admin, wasm=None, module=None):
    t = (ROOT / "bench/envoy-native.yaml.tmpl").read_text()
    t = t.replace("{{UPSTREAM_PORT}}", str(upstream))
    t = t.replace("port_value: 0 } }\nstatic", f"port_value: {admin} }} }}\nstatic", 1)
    t = t.replace(
        "port_value: 0 } }\n    filter_chains", f"port_value: {port} }} }}\n    filter_chains", 1
    )
    filt = ""
    if wasm:
        cfg = {
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "noop",
                    "failure_policy": "FAIL_CLOSED",
                    "vm_config": {
                        "vm_id": "noop",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": str(wasm)}},
                    },
                },
            },
        }
        filt = "\n          - " + json.dumps(cfg)
    if module:
        cfg = {
            "name": "envoy.filters.http.dynamic_modules",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                "dynamic_module_config": {"module": {"local": {"filename": str(module)}}},
                "filter_name": "backstage_proxy",
                "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps({"proxy": {"endpoints": {}}})},
            },
        }
        filt = "\n          - " + json.dumps(cfg)
    return t.replace("{{JWT_AUTHN}}", filt)


def endpoints(upstream, n):
    """`/svc` and `/many` (the upstream's route with 50 response headers),
    then n - 2 more with their own target paths and method lists. They all
    share the one upstream: Envoy then has one cluster whatever n is, so the
    figures are the filter's, not those of thousands of DNS clusters."""
    eps = {"/svc": f"http://127.0.0.1:{upstream}", "/many": f"http://127.0.0.1:{upstream}/many"}
    for i in range(max(0, n - 2)):
        eps[f"/team-{i}/service"] = {"target": f"http://127.0.0.1:{upstream}/team-{i}", "allowedMethods": ["GET", "POST"]}
    return eps


def filter_config(upstream, port, admin, keys_port, n_endpoints=1, gateway_extra=None, access_log="none",
                  native=False):
    """The gateway `backstage-proxy-wasm render` writes for this
    configuration (the CLI built by `make cli`), on the given ports."""
    eps = endpoints(upstream, n_endpoints) if n_endpoints > 1 else {"/svc": f"http://127.0.0.1:{upstream}"}
    cfg = {
        "proxy": {"endpoints": eps},
        "backend": {
            "baseUrl": f"http://127.0.0.1:{keys_port}",
            "auth": {"externalAccess": [{"type": "static", "options": {"token": STATIC, "subject": "bench"}}]},
        },
        "gateway": {"tokenCacheSize": 1024, **(gateway_extra or {})},
    }
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d) / "app-config.json"
        src.write_text(json.dumps(cfg))
        # sentinel ports, replaced by the placeholders count() fills in
        out = subprocess.run(
            # bare Envoy writes no access log: neither does the filter's row,
            # unless the row is about the access log
            [str(CLI), "render", str(src), "--listen", "127.0.0.1:65001", "--admin-port", "65002",
             *(["--native", NATIVE] if native else ["--wasm", WASM]),
             "--access-log", access_log],
            check=True, capture_output=True, text=True,
        ).stdout
    return out.replace("port_value: 65001", f"port_value: {port}").replace("port_value: 65002", f"port_value: {admin}")

def rate_limit_stub(limits, workdir):
    """The recording stand-in for Envoy's rate limit service
    (testkit/ratelimit/stub.py), configured by `ratelimit-config` for these
    budgets: the process and its port. Only Envoy's instructions are
    counted; the service's own cost is not the gateway's."""
    cfg = {"proxy": {"endpoints": {"/svc": "http://127.0.0.1:1"}},
           "gateway": {"rateLimitService": {"url": "http://127.0.0.1:1"}, "rateLimits": limits}}
    src = workdir / "ratelimit-app-config.json"
    src.write_text(json.dumps(cfg))
    conf = workdir / "ratelimit-config.yaml"
    conf.write_text(subprocess.run([str(CLI), "ratelimit-config", str(src)], check=True,
                                   capture_output=True, text=True).stdout)
    proc = subprocess.Popen([str(ROOT / ".venv/bin/python"), str(ROOT / "testkit/ratelimit/stub.py"),
                             "--config", str(conf), "--record", str(workdir / "ratelimit-record.jsonl")],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise SystemExit("the rate limit stand-in did not start (make grpc-tools)")
    return proc, int(line.split()[1])


def count(name, yaml_text, token, workdir, path="/api/proxy/svc/x", extra=()):
    port, admin = free_port(), free_port()
    yaml_text = yaml_text.replace("{{PORT}}", str(port)).replace("{{ADMIN}}", str(admin))
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(yaml_text)
    out = workdir / f"callgrind.{name}"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--smc-check=all", f"--callgrind-out-file={out}.%p",
         ENVOY, "-c", str(cfg), "--concurrency", "1", "--disable-hot-restart", "-l", "warn"],
        stdout=subprocess.DEVNULL, stderr=open(workdir / f"{name}.log", "w"),
    )
    try:
        # valgrind and a loaded machine can make V8's compile of the module
        # take minutes
        wait_ready(admin, proc, seconds=900)
        prime(port, token, path, extra)
        drive(port, WARM, token, path, extra)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        drive(port, COUNT, token, path, extra)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    dumps = sorted(workdir.glob(f"callgrind.{name}.*.1"))
    for line in dumps[-1].read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1]) / COUNT
    raise SystemExit(f"no summary in {dumps[-1]}")


def growth(up_port, keys_port, work):
    """Per-request instructions of the filter (static token) as the
    configuration and the request grow."""
    def extra(total):
        # http.client sends Host, Accept-Encoding and Authorization.
        return {f"x-bench-{i}": f"value-{i:04d}" for i in range(total - 3)}
    cases = [
        ("bare Envoy, 5 request headers", 0, "/api/proxy/svc/x", extra(5)),
        ("bare Envoy, 30 request headers", 0, "/api/proxy/svc/x", extra(30)),
        ("bare Envoy, 100 request headers", 0, "/api/proxy/svc/x", extra(100)),
        ("bare Envoy, 53 response headers", 0, "/api/proxy/many/x", extra(5)),
        ("10 endpoints, 5 request headers, 4 response headers", 10, "/api/proxy/svc/x", extra(5)),
        ("100 endpoints", 100, "/api/proxy/svc/x", extra(5)),
        ("1,000 endpoints", 1000, "/api/proxy/svc/x", extra(5)),
        ("10,000 endpoints", 10000, "/api/proxy/svc/x", extra(5)),
        ("30 request headers (10 endpoints)", 10, "/api/proxy/svc/x", extra(30)),
        ("100 request headers (10 endpoints)", 10, "/api/proxy/svc/x", extra(100)),
        ("53 response headers (10 endpoints)", 10, "/api/proxy/many/x", extra(5)),
    ]
    rows = []
    for i, (name, n, path, hdrs) in enumerate(cases):
        if n == 0:
            text = native_config(up_port, "{{PORT}}", "{{ADMIN}}")
        else:
            text = filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys_port, n_endpoints=n)
        ir = count(f"g{i}", text, STATIC, work, path, hdrs)
        rows.append((name, ir))
        print(f"  {name}: {ir:,.0f} instructions/request", file=sys.stderr)
    return rows


def load_figures(up_port, keys_port, work):
    """Envoy's start-to-ready time and the VM's memory, 10 and 10,000
    endpoints."""
    out = []
    for n in (10, 10000):
        port, admin = free_port(), free_port()
        text = filter_config(up_port, port, admin, keys_port, n_endpoints=n)
        cfg = work / f"load{n}.yaml"
        cfg.write_text(text)
        start = time.time()
        proc = subprocess.Popen(
            [ENVOY, "-c", str(cfg), "--concurrency", "1", "--disable-hot-restart", "-l", "warn"],
            stdout=subprocess.DEVNULL, stderr=open(work / f"load{n}.log", "w"),
        )
        try:
            wait_ready(admin, proc, seconds=120, interval=0.02)
            ready = time.time() - start
            drive(port, 10, STATIC)
            time.sleep(2.5)  # the gauge is recorded on the filter's tick
            c = http.client.HTTPConnection("127.0.0.1", admin)
            c.request("GET", "/stats?filter=vm_memory_bytes")
            stats = c.getresponse().read().decode()
            mem = max((int(l.rsplit(":", 1)[1]) for l in stats.splitlines() if "vm_memory_bytes" in l), default=0)
            size = len(json.dumps(endpoints(up_port, n)))
            out.append((n, ready, mem, size))
            print(f"  {n} endpoints: ready in {ready:.2f} s, VM memory {mem / 2**20:.1f} MiB", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return out


class Keys(http.server.BaseHTTPRequestHandler):
    """The Backstage backend as the gateway reaches it: the user key set
    (every GET), and the permission backend allowing every question (a
    POST to /api/permission/authorize, answered with the id asked), for
    the cached-permission row."""
    body = b""
    asked = 0

    def do_GET(self):
        self._send(Keys.body)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        item = json.loads(self.rfile.read(length))["items"][0]
        Keys.asked += 1
        self._send(json.dumps({"items": [{"id": item["id"], "result": "ALLOW"}]}).encode())

    def _send(self, body):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    # Stopped from outside (Ctrl-C, kill): still stop the Envoys and the
    # stand-in it started, through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    keys = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    user_token, jwks = user_token_and_jwks(f"http://127.0.0.1:{keys.server_port}")
    Keys.body = jwks.encode()
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bpw-instructions-"))
    up_port, up_admin = free_port(), free_port()
    up = (ROOT / "bench/envoy-upstream.yaml").read_text()
    up = up.replace("port_value: 0 } }\nstatic", f"port_value: {up_admin} }} }}\nstatic", 1)
    up = up.replace("port_value: 0 } }\n    filter_chains", f"port_value: {up_port} }} }}\n    filter_chains", 1)
    # /many answers with 50 response headers (the growth table's widest).
    many = ", ".join(f'{{ header: {{ key: "x-resp-{i}", value: "value-{i}" }} }}' for i in range(49))
    up = up.replace(
        "              - match: { prefix: \"/\" }",
        "              - match: { prefix: \"/many\" }\n"
        "                direct_response: { status: 200, body: { inline_string: \"{\\\"ok\\\":true}\" } }\n"
        f"                response_headers_to_add: [{many}]\n"
        "              - match: { prefix: \"/\" }",
        1,
    )
    (work / "upstream.yaml").write_text(up)
    upstream = subprocess.Popen(
        [ENVOY, "-c", str(work / "upstream.yaml"), "--concurrency", "1", "--disable-hot-restart", "-l", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    rows, growth_rows, loads = [], [], []
    stub = None
    # BENCH_ONLY picks rows by part of their name; a trailing $ asks for
    # the exact name.
    only = os.environ.get("BENCH_ONLY")

    def wanted(name):
        if not only:
            return True
        return name == only[:-1] if only.endswith("$") else only in name
    try:
        wait_ready(up_admin, upstream)
        plan = [
            ("bare Envoy (no filter)", native_config(up_port, "{{PORT}}", "{{ADMIN}}"), STATIC),
            ("no-op Rust proxy-wasm filter", native_config(up_port, "{{PORT}}", "{{ADMIN}}", NOOP), STATIC),
            ("filter, static token", filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port), STATIC),
        ]
        # what the access log costs (a JSON line per request to a file)
        plan.append(("filter, static token, access log",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port, access_log="/dev/null"), STATIC))
        # what gateway.access and gateway.rateLimits cost on top
        plan.append(("filter, static token, access policy",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port,
                                   gateway_extra={"access": {"/svc": {"allow": ["subject:bench"]}}}), STATIC))
        plan.append(("filter, static token, policy + rate limit",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port,
                                   gateway_extra={"access": {"/svc": {"allow": ["subject:bench"]}},
                                                  "rateLimits": {"/svc": {"perPrincipal": {"requests": 1000000000, "seconds": 60}}}}),
                     STATIC))
        # the same budgets decided by Envoy's global rate limit filter and a
        # service on loopback (one gRPC call per request)
        name = "filter, static token, policy + global rate limit"
        if wanted(name):
            limits = {"/svc": {"perPrincipal": {"requests": 1000000000, "seconds": 60}}}
            stub, stub_port = rate_limit_stub(limits, work)
            plan.append((name,
                         filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port,
                                       gateway_extra={"access": {"/svc": {"allow": ["subject:bench"]}},
                                                      "rateLimitService": {"url": f"http://127.0.0.1:{stub_port}",
                                                                           "timeoutMs": 1000},
                                                      "rateLimits": limits}),
                         STATIC))
        # the same 600-byte Authorization header through bare Envoy: what
        # parsing it costs Envoy, apart from the filter
        plan.append(("bare Envoy, ES256 user header", native_config(up_port, "{{PORT}}", "{{ADMIN}}"),
                     user_token))
        plan.append(("filter, ES256 user, cache warm",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port), user_token))
        # a Backstage permission on the endpoint, its answer cached (asked
        # once a minute at most: the stated time is 60 s)
        plan.append(("filter, ES256 user, cached permission",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port,
                                   gateway_extra={"access": {"/svc": {"permission": "proxy.endpoint.svc"}},
                                                  "permissionCacheSeconds": 60}), user_token))
        # the same decisions from the native dynamic module (docs/native.md),
        # above the floor of any dynamic module on this Envoy
        plan.append(("no-op native dynamic module",
                     native_config(up_port, "{{PORT}}", "{{ADMIN}}", module=NATIVE_NOOP), STATIC))
        plan.append(("native module, static token",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port, native=True), STATIC))
        plan.append(("native module, ES256 user, cache warm",
                     filter_config(up_port, "{{PORT}}", "{{ADMIN}}", keys.server_port, native=True), user_token))
        if only:
            # keep bare Envoy: every ratio is to it
            plan = [plan[0]] + [p for p in plan[1:] if wanted(p[0])]
        if os.environ.get("BENCH_PART") == "growth":
            plan = plan[:1]
        for i, (name, text, token) in enumerate(plan):
            ir = count(f"s{i}", text, token, work)
            rows.append((name, ir))
            print(f"  {name}: {ir:,.0f} instructions/request", file=sys.stderr)
        if os.environ.get("BENCH_PART") == "growth":
            rows = rows[:1]
        growth_rows = [] if only else growth(up_port, keys.server_port, work)
        loads = [] if only else load_figures(up_port, keys.server_port, work)
    finally:
        upstream.terminate()
        if stub:
            stub.kill()
        keys.shutdown()
    if Keys.asked:
        print(f"  (the permission backend was asked {Keys.asked} times)", file=sys.stderr)
    bare = rows[0][1]
    print(f"\n{'system':<50} {'instructions/request':>21} {'x bare':>8} {'bare/this':>10}")
    for name, ir in rows:
        print(f"{name:<50} {ir:>21,.0f} {ir / bare:>8.2f} {bare / ir:>10.2f}")
    print(f"(callgrind, {COUNT} sequential requests after {WARM} warm-up, Envoy --concurrency 1; "
          "bare/this is the throughput ratio a CPU-bound Envoy would reach)")
    if growth_rows:
        bare_rows = [r for r in growth_rows if r[0].startswith("bare")]
        growth_rows = [r for r in growth_rows if not r[0].startswith("bare")]
        base = growth_rows[0][1]
        print(f"\nCost as the work grows (filter, static token; worst case: no header is allowed, so every"
              " extra request header and every upstream response header is removed by the allow-lists)")
        print(f"{'case':<52} {'instructions/request':>21} {'x smallest':>11}")
        for name, ir in growth_rows:
            print(f"{name:<52} {ir:>21,.0f} {ir / base:>11.3f}")
        bare = dict(bare_rows)
        per = {n: v for n, v in growth_rows}
        if bare:
            b5 = bare["bare Envoy, 5 request headers"]
            f5 = growth_rows[0][1]
            print(f"\n{'the same requests through bare Envoy':<52} {'instructions/request':>21} {'filter extra':>13}")
            for (name, ir), key in zip(bare_rows, [None, "30 request headers (10 endpoints)",
                                                   "100 request headers (10 endpoints)", "53 response headers (10 endpoints)"]):
                extra_ir = (per[key] - ir) if key else (f5 - ir)
                print(f"{name:<52} {ir:>21,.0f} {extra_ir:>13,.0f}")
            for key, n, bname in [("30 request headers (10 endpoints)", 25, "bare Envoy, 30 request headers"),
                                  ("100 request headers (10 endpoints)", 95, "bare Envoy, 100 request headers"),
                                  ("53 response headers (10 endpoints)", 49, "bare Envoy, 53 response headers")]:
                own = (per[key] - bare[bname]) - (f5 - b5)
                print(f"  the filter's own cost per extra header ({key.split(' (')[0]}): {own / n:,.0f} instructions")
    if loads:
        print(f"\n{'endpoints':>10} {'Envoy start to ready (s)':>25} {'VM linear memory (MiB)':>23} {'config JSON (KiB)':>18}")
        for n, secs, mem, size in loads:
            print(f"{n:>10} {secs:>25.2f} {mem / 2**20:>23.1f} {size / 1024:>18.0f}")
        print("(wall time of one Envoy start, --concurrency 1, no valgrind; memory from the filter's"
              " backstage_proxy.vm_memory_bytes gauge of the worker's VM. The parse alone, natively:"
              " `cargo bench -p backstage-proxy-core --bench core -- 'config load'`)")
    out = ROOT / "bench/results/instructions.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "systems": [{"system": n, "instructions_per_request": ir} for n, ir in rows],
        "growth": [{"case": n, "instructions_per_request": ir} for n, ir in growth_rows],
        "load": [{"endpoints": n, "start_to_ready_s": t, "vm_memory_bytes": m, "config_json_bytes": z}
                 for n, t, m, z in loads],
    }, indent=2))
    print(f"wrote {out}")
    print(f"callgrind profiles (callgrind_annotate --inclusive=yes): {work}")


if __name__ == "__main__":
    main()
