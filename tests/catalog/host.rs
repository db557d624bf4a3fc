//! H. Host / :authority (`docs/security.md#the-cases`).

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn h01_h02_h03_h05_the_upstream_host_is_the_targets_unless_change_origin_is_off() {
    let g = gw(false);
    let target_host = format!("127.0.0.1:{}", g.up.port);
    for host in ["evil.test", "Upstream.TEST.", "gw.test:443", "GATEWAY.test"] {
        let m = unique();
        let raw = format!(
            "GET /api/proxy/svc/x?m={m} HTTP/1.1\r\nhost: {host}\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
            s1()
        );
        let r = g.envoy.send(&raw);
        assert_eq!(r.status, 200, "{host}");
        let seen = g.up.find(&m).unwrap();
        assert_eq!(seen.header("host"), Some(target_host.as_str()), "{host}");
        // changeOrigin: false keeps the client's Host, and only there
        let m = unique();
        let raw = format!(
            "GET /api/proxy/keep/x?m={m} HTTP/1.1\r\nhost: {host}\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
            s1()
        );
        assert_eq!(g.envoy.send(&raw).status, 200);
        assert_eq!(g.up.find(&m).unwrap().header("host"), Some(host));
    }
    // malformed authorities: Envoy refuses them, or they are replaced by
    // the target's; the filter never builds a URL from Host
    for host in ["user@gw.test", "gw.test/abc?x=", "gw test", "[::1"] {
        let m = unique();
        let raw = format!(
            "GET /api/proxy/svc/x?m={m} HTTP/1.1\r\nhost: {host}\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
            s1()
        );
        let status = http(g.envoy.port, &raw).map(|r| r.status).unwrap_or(0);
        match status {
            400 => g.up.assert_never(&m),
            200 => assert_eq!(
                g.up.find(&m).unwrap().header("host"),
                Some(target_host.as_str())
            ),
            other => panic!("Host {host:?} answered {other}"),
        }
    }
}
