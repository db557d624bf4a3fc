//! `docs/contract.md#6-methods`: allowed methods.

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn allowed_methods_answer_405_with_allow_after_credentials_deviation() {
    let f = fixture();
    let m = unique();
    assert_eq!(
        f.envoy
            .request("POST", &format!("/api/proxy/methods?{m}"), &[])
            .status,
        401
    );
    let (n, v) = auth();
    let r = f.envoy.request(
        "POST",
        &format!("/api/proxy/methods?{m}"),
        &[(n, &v), ("content-length", "0")],
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, DELETE"));
    assert_eq!(r.json()["response"]["statusCode"], 405);
    let r = f
        .envoy
        .request("HEAD", &format!("/api/proxy/methods?{m}"), &[(n, &v)]);
    assert_eq!(r.status, 405, "HEAD is not implied by GET");
    f.a.assert_never(&m);
    let m = unique();
    assert_eq!(
        f.envoy
            .request("DELETE", &format!("/api/proxy/methods/x?{m}"), &[(n, &v)])
            .status,
        200
    );
    assert_eq!(upstream_a(&m).method, "DELETE");
}

#[test]
fn trace_is_refused_and_extension_methods_are_forwarded_deviation() {
    let f = fixture();
    let (n, v) = auth();
    let m = unique();
    let r = f
        .envoy
        .request("TRACE", &format!("/api/proxy/simple?{m}"), &[(n, &v)]);
    assert_eq!(r.status, 405);
    f.a.assert_never(&m);
    let m = unique();
    assert_eq!(
        f.envoy
            .request("PROPFIND", &format!("/api/proxy/simple?{m}"), &[(n, &v)])
            .status,
        200
    );
    assert_eq!(upstream_a(&m).method, "PROPFIND");
}
