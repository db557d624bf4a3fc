//! B. Credential policy (`docs/security.md#the-cases`).

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn b01_b04_b06_require_is_the_default_and_decided_before_any_connection() {
    let g = gw(false);
    let connects = || {
        g.envoy.counter(&format!(
            "cluster.{}.upstream_cx_total",
            cluster_for_port(g.up.port)
        ))
    };
    let before = connects();
    for _ in 0..10 {
        g.refused("/api/proxy/svc/x", false, &[401], "no token");
        let (r, m) = g.raw(
            "GET",
            "/api/proxy/svc/x",
            false,
            "authorization: Bearer wrong-token-value-0001\r\n",
        );
        assert_eq!(r.status, 401);
        g.up.assert_never(&m);
    }
    assert_eq!(
        connects(),
        before,
        "a refused request opened an upstream connection"
    );
    g.routed(
        "/api/proxy/svc/x",
        "/base/x",
        "valid token, forwarded without authorization",
    );
}
