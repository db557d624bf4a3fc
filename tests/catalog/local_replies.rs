//! L. Errors (`docs/security.md#the-cases`).

use crate::fixture::*;

#[test]
fn l01_local_replies_reflect_no_input() {
    let g = gw(false);
    let hostile = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImV2aWwta2lkIn0.eyJzdWIiOiJ2aWN0aW0ifQ.c2ln";
    for (method, target, auth) in [
        ("GET", "/api/proxy/svc/x", format!("Bearer {hostile}")),
        (
            "GET",
            "/api/proxy/svc/x",
            "Bearer not-a-token-but-a-secret-0001".to_string(),
        ),
        ("POST", "/api/proxy/get-only/x", s1()),
        ("GET", "/api/proxy/nope/x", s1()),
        ("GET", "/api/proxy/svc/%2e%2e/x", s1()),
    ] {
        let (r, _) = g.raw(
            method,
            target,
            false,
            &format!("authorization: {auth}\r\ncontent-length: 0\r\n"),
        );
        assert!(r.status >= 400, "{target}");
        let body = r.text();
        for leak in [
            hostile,
            "evil-kid",
            "victim",
            "not-a-token",
            S1,
            "127.0.0.1",
        ] {
            assert!(
                !body.contains(leak),
                "{target}: body reflects {leak:?}: {body}"
            );
        }
        for (name, value) in &r.headers {
            assert!(
                !value.contains(hostile) && !value.contains(S1),
                "{name}: {value}"
            );
        }
    }
}
