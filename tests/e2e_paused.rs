//! A request paused while its key set is fetched, with a body: the body
//! waits with it (both artifacts; `BACKSTAGE_PROXY_ARTIFACT`).

use backstage_proxy_testkit as support;

use support::mint::*;
use support::*;

const AUTH: &str = "/api/auth/.well-known/jwks.json";

struct Gw {
    envoy: Envoy,
    keys: KeyServer,
    up: Upstream,
}

fn gateway() -> Gw {
    let keys = KeyServer::start();
    let up = Upstream::start(&[]);
    let (kp, upp) = (keys.port, up.port);
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upp}/base"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{kp}"}},
            "gateway":{{"jwksFetchTimeoutMs":1000}}}}"#
    );
    let opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upp), upp)
        .cluster(cluster_for_port(kp), kp);
    Gw {
        envoy: Envoy::start(opts),
        keys,
        up,
    }
}

/// A request with a body, paused while its key set is fetched, is held
/// whole with its body: nothing reaches the upstream before the token is
/// verified (a forged one's body never), and a valid one arrives with its
/// whole body. (Letting the body on while the headers wait would let the
/// held headers on with it.)
#[test]
fn a_body_waits_with_its_request_for_the_key_set() {
    let k1 = Es256::new(1, "k1");
    let forged = Es256::new(2, "k1");
    let t = now();
    for (signer, status) in [(&forged, 401), (&k1, 200)] {
        // cold each time: the request waits for the fetch
        let gw = gateway();
        gw.keys.set(AUTH, KeyMode::Stall(400, key_set(&[&k1])));
        let m = unique();
        let body = "b".repeat(100_000);
        let token = user_token(signer, "user:default/jane", t, t + 3600);
        let raw = format!(
            "POST /api/proxy/svc/upload?{m} HTTP/1.1\r\nhost: gateway.test\r\nauthorization: Bearer {token}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let r = gw.envoy.send(&raw);
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(gw.keys.count(AUTH), 1);
        if status == 200 {
            let seen = gw.up.find(&m).unwrap();
            assert_eq!(seen.method, "POST");
            assert_eq!(seen.body.len(), body.len());
            assert!(seen.body == body.as_bytes());
        } else {
            gw.up.assert_never(&m);
        }
    }
}
