//! An `https` upstream's certificate must name the upstream
//! (`tests/CATALOG.md` M09), in real Envoy with the gateway `render`
//! writes. Issue: the rendered clusters trusted the CA but checked no
//! name, so any certificate a trusted CA had issued, for any name, was
//! accepted, and the endpoint's injected credentials went to whoever held
//! it. Here a private CA issues two certificates, one for `localhost`
//! and one for `evil.example`, each served by an HTTPS upstream on
//! loopback; the endpoint's target is `https://localhost:<port>/` with an
//! injected `Authorization`, and the gateway trusts the private CA
//! (`--ca-file`):
//!
//! - the `evil.example` certificate is refused (503; Envoy's
//!   `ssl.fail_verify_san`), and no request, so no credential, reaches
//!   its upstream;
//! - the `localhost` certificate is accepted, and its upstream gets the
//!   injected header;
//! - an address target (`https://127.0.0.1`) needs the address in its
//!   certificate (an IP address entry): the `localhost` certificate there
//!   is refused, one for `IP:127.0.0.1` accepted;
//! - with the default CA file (the system store), the private CA's
//!   `localhost` certificate is refused as untrusted;
//! - `secure: false` on the endpoint, the documented way out, and the only
//!   one, accepts the `evil.example` certificate.
//!
//! Over HTTP/1.1 and HTTP/2 (cleartext, to the gateway).

use backstage_proxy_testkit as support;

use backstage_proxy_wasm_cli::appconfig::{load, load_yaml};
use backstage_proxy_wasm_cli::render;
use support::*;

const TOKEN: &str = "static-token-0123456789";
const PD_TOKEN: &str = "pd-secret-credential-0123456789";

/// The certificates and upstreams of one test.
struct Upstreams {
    ca: TestCa,
    /// Presents a certificate for `localhost`.
    good: TlsUpstream,
    /// Presents a certificate for `evil.example` (same CA).
    evil: TlsUpstream,
    /// Presents the `evil.example` certificate too, for the `secure: false`
    /// endpoint (a cluster of its own: verification is off only when every
    /// endpoint to a destination says so).
    evil_unverified: TlsUpstream,
    /// An address target, `https://127.0.0.1`: presents a certificate for
    /// the address (an IP address entry).
    ip: TlsUpstream,
    /// An address target presenting the `localhost` certificate: the
    /// address is not its name.
    ip_wrong: TlsUpstream,
}

fn upstreams() -> Upstreams {
    let ca = TestCa::new();
    let localhost = ca.issue("localhost", "DNS:localhost");
    let evil = ca.issue("evil", "DNS:evil.example");
    let address = ca.issue("address", "IP:127.0.0.1");
    Upstreams {
        good: TlsUpstream::start(&localhost),
        evil: TlsUpstream::start(&evil),
        evil_unverified: TlsUpstream::start(&evil),
        ip: TlsUpstream::start(&address),
        ip_wrong: TlsUpstream::start(&localhost),
        ca,
    }
}

/// The gateway `render` writes for three endpoints to `https://localhost`
/// (each injecting the credential), trusting `ca_file` (`None`: the
/// default, the system store), run in Envoy with the credential in its
/// environment.
fn gateway(u: &Upstreams, ca_file: Option<&std::path::Path>) -> Envoy {
    let yaml = format!(
        r#"backend:
  auth:
    externalAccess:
      - type: static
        options: {{ token: {TOKEN}, subject: ci }}
proxy:
  endpoints:
    /good:
      target: https://localhost:{}/
      headers: {{ Authorization: "Token token=${{PD_TOKEN}}" }}
    /evil:
      target: https://localhost:{}/
      headers: {{ Authorization: "Token token=${{PD_TOKEN}}" }}
    /unverified:
      target: https://localhost:{}/
      secure: false
      headers: {{ Authorization: "Token token=${{PD_TOKEN}}" }}
    /ip:
      target: https://127.0.0.1:{}/
      headers: {{ Authorization: "Token token=${{PD_TOKEN}}" }}
    /ipwrong:
      target: https://127.0.0.1:{}/
      headers: {{ Authorization: "Token token=${{PD_TOKEN}}" }}
"#,
        u.good.port, u.evil.port, u.evil_unverified.port, u.ip.port, u.ip_wrong.port
    );
    secret(PD_TOKEN);
    let env = |name: &str| (name == "PD_TOKEN").then(|| PD_TOKEN.to_string());
    let loaded = load(&[load_yaml("app-config.yaml", &yaml).unwrap()], &env);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "proxy.endpoints./unverified.secure"
                && w.message
                    .starts_with("false turns off certificate verification")),
        "check warns about secure: false: {:?}",
        loaded.warnings
    );
    let dir = TempDir::new("e2e-tls");
    let mut opts = render::Options {
        listen_address: "127.0.0.1".into(),
        listen_port: 0,
        admin_port: 0,
        wasm_path: wasm_path().display().to_string(),
        access_log: Some(dir.0.join("access.log").display().to_string()),
        ..render::Options::default()
    };
    if let Some(ca) = ca_file {
        opts.ca_file = ca.display().to_string();
    }
    let v = render::envoy(&loaded, &opts).unwrap();
    let path = dir.0.join("envoy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    Envoy::run_file(&path, 1, dir, &[], &[("PD_TOKEN", PD_TOKEN)])
        .unwrap_or_else(|(log, _)| panic!("Envoy did not start:\n{log}"))
}

/// The cluster `render` names for an upstream behind `localhost`.
fn cluster(u: &TlsUpstream) -> String {
    format!("https_localhost_{}", u.port)
}

/// A request through the gateway to `endpoint`, marked, over HTTP/1.1 or
/// HTTP/2: (status, mark).
fn call(envoy: &Envoy, endpoint: &str, h2: bool) -> (u16, String) {
    let mark = unique();
    let path = format!("/api/proxy/{endpoint}/x?{mark}");
    let auth = format!("Bearer {TOKEN}");
    let r = if h2 {
        support::h2(
            envoy.port,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "gateway.test"),
                (":path", &path),
                ("authorization", &auth),
            ],
        )
    } else {
        envoy.get(&path, &[("authorization", &auth)])
    };
    (r.status, mark)
}

/// A refusal: 503, and nothing of the request at the upstream.
fn assert_refused(envoy: &Envoy, u: &TlsUpstream, endpoint: &str, h2: bool) {
    let (status, mark) = call(envoy, endpoint, h2);
    assert_eq!(
        status,
        503,
        "/{endpoint} (h2: {h2}) must be refused; the upstream saw {:?}",
        u.record().requests
    );
    std::thread::sleep(std::time::Duration::from_millis(150));
    let record = u.record();
    assert!(
        record.requests.is_empty(),
        "/{endpoint} (h2: {h2}): nothing may reach this upstream, it saw {:?}",
        record.requests
    );
    assert!(
        !record.sni.is_empty(),
        "/{endpoint}: Envoy did reach the upstream's handshake"
    );
    assert!(!format!("{record:?}").contains(&mark));
}

/// An acceptance: 200, and the upstream got the injected credential (and
/// not the caller's token).
fn assert_accepted(envoy: &Envoy, u: &TlsUpstream, endpoint: &str, h2: bool) {
    let (status, mark) = call(envoy, endpoint, h2);
    assert_eq!(
        status,
        200,
        "/{endpoint} (h2: {h2}): {}",
        tail(&envoy.log())
    );
    let seen = u.find(&mark).expect("the request reached the upstream");
    assert_eq!(
        seen.all("authorization"),
        [format!("Token token={PD_TOKEN}")],
        "/{endpoint} (h2: {h2})"
    );
    assert_eq!(seen.target, format!("/x?{mark}"));
}

#[test]
fn a_certificate_for_another_name_is_refused_before_the_credential_leaves() {
    let u = upstreams();
    let envoy = gateway(&u, Some(&u.ca.cert()));
    for h2 in [false, true] {
        assert_refused(&envoy, &u.evil, "evil", h2);
        assert_accepted(&envoy, &u.good, "good", h2);
    }
    let evil = cluster(&u.evil);
    assert!(
        envoy.counter(&format!("cluster.{evil}.ssl.fail_verify_san")) >= 2,
        "{:?}",
        stats_of(&envoy, &evil)
    );
    assert_eq!(
        envoy.counter(&format!("cluster.{evil}.ssl.fail_verify_error")),
        0,
        "the issuer is trusted: only the name is wrong"
    );
    let good = cluster(&u.good);
    assert_eq!(
        envoy.counter(&format!("cluster.{good}.ssl.fail_verify_san")),
        0
    );
    assert!(
        u.good
            .record()
            .sni
            .iter()
            .all(|s| s.as_deref() == Some("localhost")),
        "SNI is the target's host"
    );

    // An address target: its certificate must name the address (an IP
    // address entry); a certificate for a DNS name, even this host's, is
    // refused.
    for h2 in [false, true] {
        assert_refused(&envoy, &u.ip_wrong, "ipwrong", h2);
        assert_accepted(&envoy, &u.ip, "ip", h2);
    }
    // Its stats name: render writes dots in a cluster name as `_`
    // (alt_stat_name), so that Prometheus labels carry the whole name.
    let ip_wrong = format!("https_127_0_0_1_{}", u.ip_wrong.port);
    assert!(
        envoy.counter(&format!("cluster.{ip_wrong}.ssl.fail_verify_san")) >= 2,
        "{:?}",
        stats_of(&envoy, &ip_wrong)
    );

    // `secure: false`, the documented way out: the same certificate is
    // accepted, name and issuer unchecked.
    for h2 in [false, true] {
        assert_accepted(&envoy, &u.evil_unverified, "unverified", h2);
    }
    let unverified = cluster(&u.evil_unverified);
    assert_eq!(
        envoy.counter(&format!("cluster.{unverified}.ssl.fail_verify_san")),
        0
    );
    // Still refused where the endpoint did not say so.
    assert_refused(&envoy, &u.evil, "evil", false);
}

#[test]
fn the_system_store_does_not_trust_a_private_ca() {
    let u = upstreams();
    // No --ca-file: /etc/ssl/certs/ca-certificates.crt.
    let envoy = gateway(&u, None);
    for h2 in [false, true] {
        assert_refused(&envoy, &u.good, "good", h2);
        assert_refused(&envoy, &u.evil, "evil", h2);
    }
    let good = cluster(&u.good);
    assert!(
        envoy.counter(&format!("cluster.{good}.ssl.fail_verify_error")) >= 2,
        "{:?}",
        stats_of(&envoy, &good)
    );
    // Only `secure: false` connects to what the gateway does not trust.
    assert_accepted(&envoy, &u.evil_unverified, "unverified", false);
}

/// A cluster's TLS and connection stats, for a failure's message.
fn stats_of(envoy: &Envoy, cluster: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = envoy
        .stats()
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("cluster.{cluster}.ssl")))
        .collect();
    v.sort();
    v
}

/// The end of Envoy's log, for a failure's message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
