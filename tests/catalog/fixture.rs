//! The catalogue's gateway: one Envoy per path normalisation mode, shared
//! by every group, with the endpoints the cases need, and the requests and
//! checks the groups share.

use std::sync::OnceLock;

use backstage_proxy_testkit::*;

/// S1: a 32-character static token.
pub const S1: &str = "catalog-static-token-S1-01234567";
pub const UPSTREAM_CREDENTIAL: &str = "Token upstream-credential-for-priv";
pub const INJECTED: &str = "injected-value-catalog-0001";

pub struct Gw {
    pub envoy: Envoy,
    /// `/svc` → `/base`, `/pub`, `/a.b`, `/get-only`, `/rw`, `/keep`, `/inject`.
    pub up: Upstream,
    /// `/pub/priv` only.
    pub priv_up: Upstream,
}

/// The catalogue's default fixture: `/svc` → `…/base`, `credentials`
/// unset (so `require`), plus the overlapping and special endpoints the
/// cases need. `reversed` lists the endpoints in the opposite order.
pub fn start(normalize: bool, reversed: bool) -> Gw {
    let up = Upstream::start(&[
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("x-powered-by", "Express"),
        ("www-authenticate", "Basic realm=upstream"),
        ("location", "/moved"),
        ("content-encoding", "identity"),
        ("x-injected", "echoed-by-upstream"),
        ("x-custom", "upstream-custom"),
    ]);
    let priv_up = Upstream::start(&[]);
    let (p, q) = (up.port, priv_up.port);
    let mut endpoints = vec![
        format!(r#""/svc": "http://127.0.0.1:{p}/base""#),
        format!(
            r#""/pub": {{"target": "http://127.0.0.1:{p}/pub", "credentials": "dangerously-allow-unauthenticated"}}"#
        ),
        format!(
            r#""/pub/priv": {{"target": "http://127.0.0.1:{q}/priv", "credentials": "require", "headers": {{"Authorization": "{UPSTREAM_CREDENTIAL}"}}}}"#
        ),
        format!(r#""/a.b": "http://127.0.0.1:{p}/dot""#),
        format!(
            r#""/get-only": {{"target": "http://127.0.0.1:{p}/g", "allowedMethods": ["GET"]}}"#
        ),
        format!(
            r#""/rw": {{"target": "http://127.0.0.1:{p}", "pathRewrite": {{"^/api/proxy/rw/v1/(.*)": "/v2/$1a"}}}}"#
        ),
        format!(
            r#""/evil-rw": {{"target": "http://127.0.0.1:{p}/base", "pathRewrite": {{"^/api/proxy/evil-rw/(.*)": "//evil.test/$1"}}}}"#
        ),
        format!(r#""/keep": {{"target": "http://127.0.0.1:{p}/keep", "changeOrigin": false}}"#),
        format!(
            r#""/inject": {{"target": "http://127.0.0.1:{p}/inject", "headers": {{"X-Injected": "{INJECTED}"}}, "allowedHeaders": ["X-Custom", "Set-Cookie"]}}"#
        ),
    ];
    if reversed {
        endpoints.reverse();
    }
    let config = format!(
        r#"{{"proxy": {{"endpoints": {{{}}}}},
            "backend": {{"auth": {{"externalAccess": [{{"type": "static", "options": {{"token": "{S1}", "subject": "s1"}}}}]}}}}}}"#,
        endpoints.join(",")
    );
    let mut opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(p), p)
        .cluster(cluster_for_port(q), q);
    opts.normalize = normalize;
    Gw {
        envoy: Envoy::start(opts),
        up,
        priv_up,
    }
}

pub fn gw(normalize: bool) -> &'static Gw {
    static OFF: OnceLock<Gw> = OnceLock::new();
    static ON: OnceLock<Gw> = OnceLock::new();
    if normalize {
        ON.get_or_init(|| start(true, false))
    } else {
        OFF.get_or_init(|| start(false, false))
    }
}

pub const MODES: [bool; 2] = [false, true];

pub fn mode(normalize: bool) -> &'static str {
    if normalize {
        "normalize_path on"
    } else {
        "normalize_path off (shipped)"
    }
}

pub fn s1() -> String {
    format!("Bearer {S1}")
}

impl Gw {
    /// Sends `method target` raw (a mark is appended to the query, before
    /// any fragment), with S1 when `auth`.
    pub fn raw(&self, method: &str, target: &str, auth: bool, extra: &str) -> (Response, String) {
        let m = unique();
        let (before, frag) = match target.split_once('#') {
            Some((b, f)) => (b.to_string(), format!("#{f}")),
            None => (target.to_string(), String::new()),
        };
        let sep = if before.contains('?') { '&' } else { '?' };
        let target = format!("{before}{sep}m={m}{frag}");
        let auth_line = if auth {
            format!("authorization: {}\r\n", s1())
        } else {
            String::new()
        };
        let raw = format!(
            "{method} {target} HTTP/1.1\r\nhost: gateway.test\r\n{auth_line}{extra}connection: close\r\n\r\n"
        );
        let r = http(self.envoy.port, &raw).unwrap_or(Response {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        });
        (r, m)
    }

    /// Refused with a status in `statuses`, and no upstream saw it.
    pub fn refused(&self, target: &str, auth: bool, statuses: &[u16], why: &str) {
        let (r, m) = self.raw("GET", target, auth, "");
        assert!(
            statuses.contains(&r.status),
            "{why}: {target} answered {} (want one of {statuses:?}): {}",
            r.status,
            r.text()
        );
        self.up.assert_never(&m);
        self.priv_up.assert_never(&m);
    }

    /// With S1: refused (4xx, nothing forwarded), or forwarded to a path
    /// under `base` that holds no dot segment, decoded or not.
    pub fn refused_or_confined(&self, target: &str, base: &str, why: &str) {
        let (r, m) = self.raw("GET", target, true, "");
        if r.status == 200 {
            let seen = self.up.find(&m).unwrap();
            let path = seen
                .target
                .split('?')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                path.starts_with(base),
                "{why}: {target} reached {}",
                seen.target
            );
            for seg in path
                .replace("%2e", ".")
                .replace("%2f", "/")
                .replace("%5c", "/")
                .split(['/', '\\'])
            {
                assert!(
                    seg != "." && seg != "..",
                    "{why}: {target} reached {}",
                    seen.target
                );
            }
        } else {
            assert!(
                (400..500).contains(&r.status),
                "{why}: {target} answered {}",
                r.status
            );
            self.up.assert_never(&m);
            self.priv_up.assert_never(&m);
        }
    }

    /// 401 without credentials (nothing forwarded); with S1, 200 and the
    /// upstream saw exactly `want` (the mark stripped from its query).
    pub fn routed(&self, target: &str, want: &str, why: &str) {
        self.refused(target, false, &[401], why);
        let (r, m) = self.raw("GET", target, true, "");
        assert_eq!(r.status, 200, "{why}: {target}: {}", r.text());
        let seen = self
            .up
            .find(&m)
            .or_else(|| self.priv_up.find(&m))
            .unwrap_or_else(|| panic!("{why}: {target} reached no upstream"));
        let got = seen
            .target
            .replace(&format!("&m={m}"), "")
            .replace(&format!("?m={m}"), "");
        assert_eq!(got, want, "{why}: {target}");
        assert_eq!(
            seen.header("authorization"),
            None,
            "{why}: credentials forwarded"
        );
    }

    pub fn vm_memory(&self) -> u64 {
        self.envoy
            .stats()
            .into_iter()
            .filter(|(k, _)| k.contains("backstage_proxy.vm_memory_bytes."))
            .map(|(_, v)| v)
            .sum()
    }
}
