//! The routing the Istio output writes, run in real Envoy with the filter
//! (`docs/contract.md#the-gateways-users-run`): the `VirtualService`'s routes, translated one for one into
//! Envoy routes as Istio translates them (header match → cluster
//! `outbound|<port>||<host>`, `rewrite.authority` → `host_rewrite_literal`,
//! `headers.request.remove`), in a virtual host that serves only the
//! gateway's hostname, and the filter configured from the emitted
//! `WasmPlugin`. A request reaches its target because Envoy clears the
//! route cache after the filter sets its header; `:authority` must be the
//! route's to rewrite, since a rewritten one would leave the gateway's
//! virtual host (shown with the filter rewriting it instead: 404).

use backstage_proxy_testkit as support;

use backstage_proxy_wasm_cli::appconfig::{load, load_yaml};
use backstage_proxy_wasm_cli::kube::{self, KubeOptions};
use serde_json::{json, Value};
use support::*;

const TOKEN: &str = "static-token-0123456789";
const HOST: &str = "backstage.example.com";

/// A classic Istio ingress gateway serving [`HOST`].
fn classic_gateway() -> KubeOptions {
    KubeOptions {
        url: "oci://r/x:1".into(),
        sha256: Some(
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        ),
        namespace: "istio-system".into(),
        gateway: "backstage-gateway".into(),
        hostnames: vec![HOST.into()],
        selector: vec![("istio".into(), "ingressgateway".into())],
        gateway_api: false,
        traffic_extension: false,
        envoy_proxy: false,
        allow_unpinned: false,
        secret_name: "backstage-proxy-wasm".into(),
        gateway_deployment: "istio-ingressgateway".into(),
        upstream_ca: None,
        native: None,
    }
}

fn istio_docs(port: u16) -> Vec<Value> {
    let yaml = format!(
        "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: {TOKEN}, subject: ci }}\nproxy:\n  endpoints:\n    /svc: http://127.0.0.1:{port}/base\n    /keep: {{ target: 'http://localhost:{port}/keep', changeOrigin: false }}\n    /slow: {{ target: 'http://127.0.0.1:{port}/slow', proxyTimeout: 5000 }}\n"
    );
    let loaded = load(&[load_yaml("app-config.yaml", &yaml).unwrap()], &|_| None);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let opts = classic_gateway();
    kube::istio(&loaded, &opts).unwrap().0
}

/// The VirtualService's http routes as Istio gives them to Envoy.
fn envoy_routes(vs: &Value) -> Vec<Value> {
    let mut routes = Vec::new();
    for r in vs["spec"]["http"].as_array().unwrap() {
        let m = &r["match"][0];
        let headers: Vec<Value> = m["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| json!({ "name": n, "string_match": { "exact": v["exact"] } }))
            .collect();
        let d = &r["route"][0]["destination"];
        let mut action = json!({
            "cluster": format!("outbound|{}||{}", d["port"]["number"], d["host"].as_str().unwrap()),
            "timeout": r.get("timeout").cloned().unwrap_or(json!("0s"))
        });
        if let Some(a) = r["rewrite"]["authority"].as_str() {
            action["host_rewrite_literal"] = json!(a);
        }
        routes.push(json!({
            "match": { "prefix": m["uri"]["prefix"], "headers": headers },
            "route": action,
            "request_headers_to_remove": r["headers"]["request"]["remove"]
        }));
    }
    routes
}

fn gateway(filter_config: &Value, vs: &Value, up: u16) -> Envoy {
    let mut opts = EnvoyOptions::new(filter_config.to_string());
    for host in ["127.0.0.1", "localhost"] {
        opts = opts.cluster(format!("outbound|{up}||{host}"), up);
    }
    let mut v: Value = serde_json::from_str(&render_config(&opts, &wasm_path())).unwrap();
    let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["route_config"]["virtual_hosts"] = json!([{
        "name": "gateway", "domains": [HOST], "routes": envoy_routes(vs)
    }]);
    let dir = TempDir::new("kube-routes");
    let path = dir.0.join("envoy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    Envoy::run_file(&path, 1, dir, &[], &[]).unwrap_or_else(|(log, _)| panic!("{log}"))
}

fn get(envoy: &Envoy, path: &str) -> Response {
    envoy.send(&format!(
        "GET {path} HTTP/1.1\r\nhost: {HOST}\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
    ))
}

#[test]
fn the_virtual_service_routes_each_endpoint_in_envoy_after_the_filter() {
    let up = Upstream::start(&[]);
    let docs = istio_docs(up.port);
    let plugin = docs.iter().find(|d| d["kind"] == "WasmPlugin").unwrap();
    let vs = docs.iter().find(|d| d["kind"] == "VirtualService").unwrap();
    let envoy = gateway(&plugin["spec"]["pluginConfig"], vs, up.port);

    let m = unique();
    let r = get(&envoy, &format!("/api/proxy/svc/x?{m}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.find(&m).unwrap();
    assert_eq!(seen.target, format!("/base/x?{m}"));
    assert_eq!(
        seen.header("host"),
        Some(format!("127.0.0.1:{}", up.port).as_str()),
        "changeOrigin, by the route"
    );
    assert_eq!(
        seen.header("x-backstage-proxy-cluster"),
        None,
        "the route removed it"
    );
    assert_eq!(seen.header("authorization"), None);

    let m = unique();
    assert_eq!(get(&envoy, &format!("/api/proxy/keep/y?{m}")).status, 200);
    assert_eq!(
        up.find(&m).unwrap().header("host"),
        Some(HOST),
        "changeOrigin: false keeps the client's"
    );
    let m = unique();
    assert_eq!(get(&envoy, &format!("/api/proxy/slow/z?{m}")).status, 200);
    assert_eq!(up.find(&m).unwrap().target, format!("/slow/z?{m}"));

    // Without the filter's header nothing routes: outside the prefix (the
    // filter removes a client-sent header there) and a forged header.
    let r = envoy.send(&format!(
        "GET /base/x HTTP/1.1\r\nhost: {HOST}\r\nx-backstage-proxy-cluster: outbound|{}||127.0.0.1\r\nconnection: close\r\n\r\n",
        up.port
    ));
    assert_eq!(r.status, 404);
    // Unknown endpoint under the prefix: the filter answers.
    assert_eq!(get(&envoy, "/api/proxy/nowhere").status, 404);
}

#[test]
fn with_the_filter_rewriting_authority_the_request_leaves_the_virtual_host() {
    let up = Upstream::start(&[]);
    let docs = istio_docs(up.port);
    let plugin = docs.iter().find(|d| d["kind"] == "WasmPlugin").unwrap();
    let vs = docs.iter().find(|d| d["kind"] == "VirtualService").unwrap();
    let mut cfg = plugin["spec"]["pluginConfig"].clone();
    cfg["gateway"]["authorityRewrite"] = json!("filter");
    let envoy = gateway(&cfg, vs, up.port);
    let m = unique();
    assert_eq!(
        get(&envoy, &format!("/api/proxy/svc/x?{m}")).status,
        404,
        "Host 127.0.0.1:port has no virtual host"
    );
    up.assert_never(&m);
}

/// `gateway.rateLimitService` on Istio: the `EnvoyFilter` the output writes,
/// its patches applied as Istio applies them (the rate limit filter before
/// the router, the descriptors on the gateway's virtual host, Backstage's
/// body on the connection manager), in Envoy with the VirtualService's
/// routes and another application's route on the same host, against the
/// recording stand-in for the rate limit service.
#[test]
fn the_istio_envoy_filter_rate_limits_in_envoy_and_no_other_route_feeds_it() {
    use backstage_proxy_wasm_cli::ratelimit::service_config;
    let up = Upstream::start(&[]);
    let p = up.port;
    let app_config = |service: u16| {
        format!(
            "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: {TOKEN}, subject: ci }}\nproxy:\n  endpoints:\n    /svc: http://127.0.0.1:{p}/base\ngateway:\n  rateLimitService: {{ url: 'http://127.0.0.1:{service}', timeoutMs: 2000 }}\n  rateLimits:\n    /svc: {{ perPrincipal: {{ requests: 2, seconds: 3600 }} }}\n"
        )
    };
    let loaded = |yaml: &str| load(&[load_yaml("app-config.yaml", yaml).unwrap()], &|_| None);
    let first = loaded(&app_config(1));
    let stub = RateLimitStub::start(
        &service_config(first.plan.as_ref().unwrap())
            .unwrap()
            .unwrap(),
    );
    let l = loaded(&app_config(stub.port));
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let opts = classic_gateway();
    let docs = kube::istio(&l, &opts).unwrap().0;
    let plugin = docs.iter().find(|d| d["kind"] == "WasmPlugin").unwrap();
    let vs = docs.iter().find(|d| d["kind"] == "VirtualService").unwrap();
    let ef = docs.iter().find(|d| d["kind"] == "EnvoyFilter").unwrap();
    assert_eq!(
        ef["spec"]["workloadSelector"]["labels"]["istio"],
        "ingressgateway"
    );

    // The gateway Istio would program, before the EnvoyFilter: the filter
    // from the WasmPlugin, the VirtualService's routes, and the Backstage
    // app's own route on the same host (another VirtualService).
    let stub_cluster = format!("outbound|{}||127.0.0.1", stub.port);
    let mut eo = EnvoyOptions::new(plugin["spec"]["pluginConfig"].to_string())
        .cluster(format!("outbound|{p}||127.0.0.1"), p)
        .cluster(stub_cluster.clone(), stub.port);
    eo.concurrency = 2;
    let mut v: Value = serde_json::from_str(&render_config(&eo, &wasm_path())).unwrap();
    let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let filters = hcm["http_filters"].as_array_mut().unwrap();
    filters.retain(|f| f["name"] != "envoy.filters.http.ratelimit");
    hcm.as_object_mut().unwrap().remove("local_reply_config");
    let mut routes = envoy_routes(vs);
    routes.push(json!({
        "match": { "prefix": "/app" },
        "route": { "cluster": format!("outbound|{p}||127.0.0.1") }
    }));
    let mut vhost = json!({ "name": "gateway", "domains": [HOST], "routes": routes });
    // The patches, as Istio applies them.
    for patch in ef["spec"]["configPatches"].as_array().unwrap() {
        let value = &patch["patch"]["value"];
        match (
            patch["applyTo"].as_str().unwrap(),
            patch["patch"]["operation"].as_str().unwrap(),
        ) {
            ("HTTP_FILTER", "INSERT_BEFORE") => {
                assert_eq!(
                    patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
                    "envoy.filters.http.router"
                );
                let filters = hcm["http_filters"].as_array_mut().unwrap();
                let at = filters
                    .iter()
                    .position(|f| f["name"] == "envoy.filters.http.router")
                    .unwrap();
                filters.insert(at, value.clone());
            }
            ("VIRTUAL_HOST", "MERGE") => {
                for (k, val) in value.as_object().unwrap() {
                    vhost[k] = val.clone();
                }
            }
            ("NETWORK_FILTER", "MERGE") => {
                for (k, val) in value["typed_config"].as_object().unwrap() {
                    if k != "@type" {
                        hcm[k] = val.clone();
                    }
                }
            }
            other => panic!("a patch this test does not apply: {other:?}"),
        }
    }
    hcm["route_config"]["virtual_hosts"] = json!([vhost]);
    // Istio gives a GRPC port's cluster HTTP/2.
    for c in v["static_resources"]["clusters"].as_array_mut().unwrap() {
        if c["name"] == stub_cluster.as_str() {
            c["typed_extension_protocol_options"] = json!({ "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} } } });
        }
    }
    let dir = TempDir::new("kube-ratelimit");
    let path = dir.0.join("envoy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let envoy = Envoy::run_file(&path, 2, dir, &[], &[]).unwrap_or_else(|(log, _)| panic!("{log}"));

    // A caller forging the descriptors on the app's route, where the
    // virtual host's rate limits apply too: the filter removed them, so
    // the service is never asked and nobody's budget is spent.
    for _ in 0..5 {
        let r = envoy.send(&format!(
            "GET /app/page HTTP/1.1\r\nhost: {HOST}\r\nx-backstage-proxy-ratelimit-endpoint: /svc\r\nx-backstage-proxy-ratelimit-principal: ci\r\nconnection: close\r\n\r\n"
        ));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(stub.calls().is_empty(), "{:?}", stub.calls());
    // The endpoint's budget: two, then Backstage's 429.
    let statuses: Vec<u16> = (0..3)
        .map(|_| get(&envoy, &format!("/api/proxy/svc/x?{}", unique())).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let m = unique();
    let r = get(&envoy, &format!("/api/proxy/svc/x?{m}"));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["name"], "TooManyRequestsError");
    assert_eq!(r.json()["request"]["url"], format!("/api/proxy/svc/x?{m}"));
    assert!(r.header("retry-after").is_some());
    up.assert_never(&m);
    let calls = stub.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls[0]["descriptors"],
        json!([
            [["backstage_proxy_endpoint", "/svc"]],
            [
                ["backstage_proxy_endpoint", "/svc"],
                ["backstage_proxy_principal", "external|ci"]
            ]
        ])
    );
}
