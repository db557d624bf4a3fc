//! Routing proven from the emitted resources alone (no Istio or Envoy
//! Gateway can run here). For every fixture and output mode, each
//! endpoint's request goes through the filter's own decision (the core,
//! with the configuration taken from the emitted plugin resource), its
//! edits are applied, and the gateway's routes are evaluated as the
//! gateway evaluates them: a `VirtualService`'s `http` routes in order,
//! first match wins; `HTTPRoute` rules by Gateway API precedence (longest
//! path, then most header matches), which must leave exactly one. The route
//! must take the request to the endpoint's target (host, port, TLS and its
//! verification) with the authority Backstage would send, and remove the
//! destination header. A request without the filter's header (a client
//! that bypasses it) must match no route. The filter's own calls must name
//! a cluster that reaches their destination.

mod common;

use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::{self, Endpoint, Plan};
use backstage_proxy_core::decision::{decide, header_view, Decision, Request};
use common::generated;
use serde_json::{json, Value};

/// Where a route sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dest {
    host: String,
    port: u64,
    tls: bool,
    verify: bool,
}

struct Matched {
    dest: Dest,
    authority: Option<String>,
    removes: Vec<String>,
}

fn plugin_config(docs: &[Value]) -> Value {
    let p = &docs[0]["spec"];
    p.get("pluginConfig")
        .or_else(|| p["wasm"].get("pluginConfig"))
        .or_else(|| p["wasm"][0].get("config"))
        .expect("the plugin resource carries the filter configuration")
        .clone()
}

fn headers_match(want: &[(String, String)], have: &[(String, String)]) -> bool {
    want.iter().all(|(n, v)| {
        have.iter()
            .any(|(hn, hv)| hn.eq_ignore_ascii_case(n) && hv == v)
    })
}

fn istio_tls(docs: &[Value], host: &str, port: u64) -> (bool, bool) {
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
    {
        assert!(
            d["spec"]["trafficPolicy"].get("tls").is_none(),
            "no host-wide TLS"
        );
        for s in d["spec"]["trafficPolicy"]["portLevelSettings"]
            .as_array()
            .unwrap()
        {
            if s["port"]["number"] == port {
                // Verified: the issuer and the name (`subjectAltNames`:
                // with `sni` set, Istio checks no name of its own).
                let verify = !s["tls"]["insecureSkipVerify"].as_bool().unwrap_or(false);
                if verify {
                    assert_eq!(
                        s["tls"]["subjectAltNames"],
                        json!([host]),
                        "the certificate's name is checked: {host}:{port}"
                    );
                } else {
                    assert!(s["tls"].get("subjectAltNames").is_none());
                }
                return (true, verify);
            }
        }
    }
    (false, false)
}

fn istio_service_entry_has(docs: &[Value], host: &str, port: u64) -> bool {
    if backstage_proxy_wasm_cli::kube::in_cluster(host).is_some() {
        // A Kubernetes Service: in Istio's registry, never a ServiceEntry.
        return !docs
            .iter()
            .any(|d| d["kind"] == "ServiceEntry" && d["spec"]["hosts"][0] == host);
    }
    let entries: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == "ServiceEntry"
                && d["spec"]["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h == host)
        })
        .collect();
    assert!(entries.len() <= 1, "one ServiceEntry per host: {host}");
    entries.first().is_some_and(|e| {
        e["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["number"] == port)
    })
}

/// A VirtualService: first matching route wins.
fn route_vs(docs: &[Value], path: &str, headers: &[(String, String)]) -> Vec<Matched> {
    let mut out = Vec::new();
    for vs in docs.iter().filter(|d| d["kind"] == "VirtualService") {
        for r in vs["spec"]["http"].as_array().unwrap() {
            let hit = r["match"].as_array().unwrap().iter().any(|m| {
                let prefix = m["uri"]["prefix"].as_str().unwrap();
                let want: Vec<(String, String)> = m["headers"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(n, v)| (n.clone(), v["exact"].as_str().unwrap().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                path.starts_with(prefix) && headers_match(&want, headers)
            });
            if hit {
                let d = &r["route"][0]["destination"];
                let host = d["host"].as_str().unwrap().to_string();
                let port = d["port"]["number"].as_u64().unwrap();
                assert!(
                    istio_service_entry_has(docs, &host, port),
                    "ServiceEntry for {host}:{port}"
                );
                let (tls, verify) = istio_tls(docs, &host, port);
                out.push(Matched {
                    dest: Dest {
                        host,
                        port,
                        tls,
                        verify,
                    },
                    authority: r["rewrite"]["authority"].as_str().map(str::to_string),
                    removes: r["headers"]["request"]["remove"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                });
                return out; // first match wins
            }
        }
    }
    out
}

/// HTTPRoutes: every matching rule, then Gateway API precedence.
fn route_http(
    docs: &[Value],
    path: &str,
    headers: &[(String, String)],
    envoy_gateway: bool,
) -> Vec<Matched> {
    let mut hits: Vec<(usize, usize, Matched)> = Vec::new();
    for route in docs.iter().filter(|d| d["kind"] == "HTTPRoute") {
        for rule in route["spec"]["rules"].as_array().unwrap() {
            for m in rule["matches"].as_array().unwrap() {
                assert_eq!(m["path"]["type"], "PathPrefix");
                let prefix = m["path"]["value"].as_str().unwrap();
                let want = match_headers(m);
                if !(path.starts_with(prefix) && headers_match(&want, headers)) {
                    continue;
                }
                let b = &rule["backendRefs"][0];
                let port = b["port"].as_u64().unwrap();
                let dest = if envoy_gateway && b["kind"] == "Service" {
                    service_dest(docs, route, b, port)
                } else if envoy_gateway {
                    backend_dest(docs, b, port)
                } else {
                    hostname_dest(docs, b, port)
                };
                let (authority, removes) = rule_filters(rule);
                hits.push((
                    prefix.len(),
                    want.len(),
                    Matched {
                        dest,
                        authority,
                        removes,
                    },
                ));
            }
        }
    }
    // Gateway API precedence: longest path, then most header matches.
    let best = hits.iter().map(|(p, h, _)| (*p, *h)).max();
    let n_best = hits
        .iter()
        .filter(|(p, h, _)| Some((*p, *h)) == best)
        .count();
    assert!(
        n_best <= 1,
        "{n_best} rules tie for the request: the gateway's choice would be arbitrary"
    );
    hits.into_iter()
        .filter(|(p, h, _)| Some((*p, *h)) == best)
        .map(|(_, _, m)| m)
        .collect()
}

/// A rule match's headers, all `Exact`: (name, value).
fn match_headers(m: &Value) -> Vec<(String, String)> {
    m["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["type"], "Exact");
            (
                h["name"].as_str().unwrap().to_string(),
                h["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Envoy Gateway: a Service as a rule's backend (with the `ReferenceGrant`
/// another namespace needs); TLS where a `BackendTLSPolicy` names it.
fn service_dest(docs: &[Value], route: &Value, b: &Value, port: u64) -> Dest {
    let ns = b["namespace"]
        .as_str()
        .unwrap_or(route["metadata"]["namespace"].as_str().unwrap());
    let name = b["name"].as_str().unwrap();
    if ns != route["metadata"]["namespace"] {
        assert!(
            docs.iter().any(|d| d["kind"] == "ReferenceGrant"
                && d["metadata"]["namespace"] == ns
                && d["spec"]["from"][0]["namespace"] == route["metadata"]["namespace"]
                && d["spec"]["to"][0]["kind"] == "Service"),
            "a ReferenceGrant in {ns}"
        );
    }
    let policy = docs.iter().any(|d| {
        d["kind"] == "BackendTLSPolicy"
            && d["metadata"]["namespace"] == ns
            && d["spec"]["targetRefs"][0]["kind"] == "Service"
            && d["spec"]["targetRefs"][0]["name"] == name
    });
    Dest {
        host: format!("{name}.{ns}.svc"),
        port,
        tls: policy,
        verify: policy,
    }
}

/// Envoy Gateway: the `Backend` a rule names, TLS from its
/// `BackendTLSPolicy` or its own `insecureSkipVerify`.
fn backend_dest(docs: &[Value], b: &Value, port: u64) -> Dest {
    assert_eq!(b["kind"], "Backend");
    let backend = docs
        .iter()
        .find(|d| d["kind"] == "Backend" && d["metadata"]["name"] == b["name"])
        .expect("the Backend a rule names exists");
    let ep = &backend["spec"]["endpoints"][0];
    let (host, bport) = match ep.get("fqdn") {
        Some(f) => (f["hostname"].clone(), f["port"].as_u64().unwrap()),
        None => (
            ep["ip"]["address"].clone(),
            ep["ip"]["port"].as_u64().unwrap(),
        ),
    };
    assert_eq!(bport, port);
    // Gateway API: the policy's hostname is the SNI and the name the
    // certificate must match: the Backend's host.
    let policy = docs.iter().any(|d| {
        d["kind"] == "BackendTLSPolicy"
            && d["spec"]["targetRefs"][0]["name"] == b["name"]
            && d["spec"]["validation"]["wellKnownCACertificates"] == "System"
            && d["spec"]["validation"]["hostname"] == host
    });
    let skip = backend["spec"]["tls"]["insecureSkipVerify"] == json!(true);
    Dest {
        host: host.as_str().unwrap().to_string(),
        port,
        tls: policy || skip,
        verify: policy,
    }
}

/// Istio: a `Hostname` backend, with its `ServiceEntry` and TLS from its
/// `DestinationRule`.
fn hostname_dest(docs: &[Value], b: &Value, port: u64) -> Dest {
    assert_eq!(b["kind"], "Hostname");
    let host = b["name"].as_str().unwrap().to_string();
    assert!(istio_service_entry_has(docs, &host, port));
    let (tls, verify) = istio_tls(docs, &host, port);
    Dest {
        host,
        port,
        tls,
        verify,
    }
}

/// What a rule's filters do: the authority it rewrites, the headers it
/// removes.
fn rule_filters(rule: &Value) -> (Option<String>, Vec<String>) {
    let mut authority = None;
    let mut removes = Vec::new();
    for f in rule["filters"].as_array().unwrap() {
        match f["type"].as_str().unwrap() {
            "URLRewrite" => authority = f["urlRewrite"]["hostname"].as_str().map(str::to_string),
            "RequestHeaderModifier" => {
                removes = f["requestHeaderModifier"]["remove"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            }
            other => panic!("unexpected filter {other}"),
        }
    }
    (authority, removes)
}

fn route(docs: &[Value], mode: &[&str], path: &str, headers: &[(String, String)]) -> Vec<Matched> {
    if mode[0] == "envoy-gateway" {
        route_http(docs, path, headers, true)
    } else if mode.contains(&"--gateway-api") {
        route_http(docs, path, headers, false)
    } else {
        route_vs(docs, path, headers)
    }
}

/// The request after the filter: its edits applied to the client's headers.
fn through_filter(plan: &Plan, method: &str, path: &str) -> (String, Vec<(String, String)>) {
    let client = vec![
        (":authority".to_string(), b"backstage.example.com".to_vec()),
        ("accept".to_string(), b"application/json".to_vec()),
    ];
    let request = Request {
        method,
        path: Some(path),
        authority: "backstage.example.com",
        downstream_tls: true,
        headers: &header_view(&client),
        client_address: Some("10.1.2.3:5555"),
        now_ms: 1_800_000_000_000,
    };
    let Decision::Forward(f) = decide(plan, &mut AuthState::new(plan), &request) else {
        panic!("{method} {path} was not forwarded");
    };
    let mut headers: Vec<(String, String)> = client
        .iter()
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .filter(|(n, _)| !f.remove.iter().any(|r| r.as_ref() == n))
        .collect();
    let mut new_path = path.to_string();
    for (n, v) in &f.set {
        if n == ":path" {
            new_path = v.to_string();
            continue;
        }
        headers.retain(|(h, _)| h != n.as_ref());
        headers.push((n.to_string(), v.to_string()));
    }
    (new_path, headers)
}

#[test]
fn each_endpoints_request_reaches_its_target_and_nothing_else_routes() {
    let mut checked = 0;
    for (what, mode, docs) in generated() {
        assert_each_resource_once(&what, &docs);
        let plan = plan_without_credentials(&what, &docs);
        for e in &plan.endpoints {
            assert_endpoint_routed(&what, mode, &docs, &plan, e);
            checked += 1;
        }
        assert_bypass_routes_nowhere(&what, mode, &docs);
        assert_callouts_reach_their_hosts(&what, &docs, &plan);
    }
    eprintln!("{checked} endpoint routes checked");
    assert!(checked >= 50);
}

/// Each resource once: kubectl would apply a duplicate over the first.
fn assert_each_resource_once(what: &str, docs: &[Value]) {
    let mut names: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}/{}",
                d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]
            )
        })
        .collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "{what}: a resource is written twice");
}

/// The filter's plan, from the configuration in the emitted plugin resource.
fn plan_without_credentials(what: &str, docs: &[Value]) -> Plan {
    let mut cfg = plugin_config(docs);
    // Decide without credentials: routing is what is checked here.
    cfg["backend"]["auth"]["dangerouslyDisableDefaultAuthPolicy"] = json!(true);
    // (`gateway.access` would ask for credentials again, and a
    // per-principal budget is refused without them.)
    if let Some(g) = cfg.get_mut("gateway").and_then(Value::as_object_mut) {
        g.remove("access");
        for limit in g
            .get_mut("rateLimits")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|l| l.values_mut())
            .filter_map(Value::as_object_mut)
        {
            limit.remove("perPrincipal");
        }
    }
    let plan = config::parse_value(&cfg, &|_| Some("x".into())).unwrap();
    assert!(plan.gateway.route_rewrites_authority, "{what}");
    plan
}

/// The endpoint's request, through the filter, matches exactly one route,
/// which takes it to the endpoint's target with Backstage's authority and
/// removes the filter's headers.
fn assert_endpoint_routed(what: &str, mode: &[&str], docs: &[Value], plan: &Plan, e: &Endpoint) {
    let method = e
        .allowed_methods
        .as_ref()
        .and_then(|m| m.first().cloned())
        .unwrap_or_else(|| "GET".into());
    let path = format!("{}{}/routing-check?x=1", plan.gateway.prefix, e.key);
    let (upstream_path, headers) = through_filter(plan, &method, &path);
    let hits = route(docs, mode, &upstream_path, &headers);
    assert_eq!(
        hits.len(),
        1,
        "{what}: {} matched {} routes",
        e.raw_key,
        hits.len()
    );
    let m = &hits[0];
    let want = Dest {
        host: e.target.host.trim_matches(['[', ']']).to_ascii_lowercase(),
        port: u64::from(e.target.port),
        tls: e.target.scheme == "https",
        verify: e.target.scheme == "https" && e.envoy.secure != Some(false),
    };
    // A Service is named by its cluster DNS name in either form.
    let mut got = Dest {
        host: m.dest.host.clone(),
        ..m.dest
    };
    if let (Some(a), Some(b)) = (
        backstage_proxy_wasm_cli::kube::in_cluster(&got.host),
        backstage_proxy_wasm_cli::kube::in_cluster(&want.host),
    ) {
        if a == b {
            got.host = want.host.clone();
        }
    }
    assert_eq!(got, want, "{what}: {}", e.raw_key);
    // The authority Backstage sends: the target's with changeOrigin
    // (an HTTPRoute can only set the hostname), else the client's or
    // an injected Host.
    let client = "backstage.example.com".to_string();
    let sent = m.authority.clone().unwrap_or(client);
    match &e.upstream_authority {
        Some(a) if mode.contains(&"--gateway-api") || mode[0] == "envoy-gateway" => {
            assert_eq!(sent, a.split(':').next().unwrap(), "{what}: {}", e.raw_key)
        }
        Some(a) => assert_eq!(&sent, a, "{what}: {}", e.raw_key),
        None => assert_eq!(sent, "backstage.example.com", "{what}: {}", e.raw_key),
    }
    assert!(
        m.removes.contains(&plan.gateway.cluster_header),
        "{what}: the header is removed"
    );
    if plan.gateway.rate_limit_service.is_some() {
        for h in backstage_proxy_wasm_cli::ratelimit::HEADERS {
            assert!(m.removes.iter().any(|r| r == h), "{what}: {h} is removed");
        }
    }
    if !e.xfwd {
        assert!(
            m.removes.iter().any(|r| r == "x-forwarded-proto"),
            "{what}: {}",
            e.raw_key
        );
    }
}

/// A client that bypasses the filter (or a request outside the prefix,
/// whose cluster header the filter removes) matches nothing.
fn assert_bypass_routes_nowhere(what: &str, mode: &[&str], docs: &[Value]) {
    for path in ["/", "/api/proxy/anything", "/internal/admin"] {
        let headers = vec![(
            ":authority".to_string(),
            "backstage.example.com".to_string(),
        )];
        assert!(
            route(docs, mode, path, &headers).is_empty(),
            "{what}: {path} routed without the header"
        );
    }
}

/// The filter's own calls name a cluster that reaches their host.
fn assert_callouts_reach_their_hosts(what: &str, docs: &[Value], plan: &Plan) {
    let callouts: Vec<(String, String)> = plan
        .backend
        .iter()
        .map(|b| (b.cluster.clone(), b.url.host.clone()))
        .chain(
            plan.auth
                .jwks
                .iter()
                .map(|j| (j.cluster.clone(), j.url.host.clone())),
        )
        .collect();
    for (cluster, host) in callouts {
        if let Some(rest) = cluster.strip_prefix("outbound|") {
            let (port, h) = rest.split_once("||").unwrap();
            assert_eq!(h, host, "{what}");
            assert!(
                istio_service_entry_has(docs, h, port.parse().unwrap()),
                "{what}: {cluster}"
            );
        } else {
            let parts: Vec<&str> = cluster.split('/').collect();
            assert_eq!(parts[0], "httproute", "{what}: {cluster}");
            let route = docs
                .iter()
                .find(|d| {
                    d["kind"] == "HTTPRoute"
                        && d["metadata"]["name"] == parts[2]
                        && d["metadata"]["namespace"] == parts[1]
                })
                .unwrap_or_else(|| panic!("{what}: {cluster} names no HTTPRoute"));
            let rule = &route["spec"]["rules"][parts[4].parse::<usize>().unwrap()];
            let r = &rule["backendRefs"][0];
            if r["kind"] == "Service" {
                // An in-cluster callout (the Backstage backend as a
                // Service): the rule names that Service.
                let (svc, ns) = backstage_proxy_wasm_cli::kube::in_cluster(&host).unwrap();
                assert_eq!(r["name"], svc.as_str(), "{what}: {cluster}");
                let ns_ref = r["namespace"].as_str().unwrap_or(parts[1]);
                assert_eq!(ns_ref, ns, "{what}: {cluster}");
                continue;
            }
            let backend = docs
                .iter()
                .find(|d| {
                    d["kind"] == "Backend"
                        && d["metadata"]["name"] == rule["backendRefs"][0]["name"]
                })
                .unwrap();
            let ep = &backend["spec"]["endpoints"][0];
            let bhost = ep["fqdn"]["hostname"]
                .as_str()
                .or(ep["ip"]["address"].as_str())
                .unwrap();
            assert_eq!(bhost, host, "{what}: {cluster}");
        }
    }
}
