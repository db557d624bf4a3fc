//! D. Token extraction and static tokens (`docs/security.md#the-cases`).

use crate::fixture::*;

#[test]
fn d01_d02_the_bearer_scheme_as_backstage_reads_it() {
    let g = gw(false);
    let send = |auth: &str| {
        let (r, m) = g.raw(
            "GET",
            "/api/proxy/svc/x",
            false,
            &format!("authorization: {auth}\r\n"),
        );
        (r.status, m)
    };
    for ok in [
        format!("bearer {S1}"),
        format!("Bearer  {S1}"),
        format!("BEARER {S1}"),
    ] {
        let (s, m) = send(&ok);
        assert_eq!(s, 200, "{ok:.12}");
        assert!(g.up.find(&m).is_some());
    }
    // HTTP/1 strips the field's trailing whitespace before anyone sees it,
    // so `Bearer <t> ` is `Bearer <t>` to Envoy and to Node alike
    let (s, _) = send(&format!("Bearer {S1} "));
    assert_eq!(s, 200);
    for bad in [
        format!("Bearer\t{S1}"),
        format!("Bearer {S1} x"),
        "Bearer a b".to_string(),
        format!("Basic {S1}"),
        "Bearer".to_string(),
        format!("Bearer-{S1}"),
        format!("Bearer a, Bearer {S1}"),
        format!("Token {S1}"),
    ] {
        let (s, m) = send(&bad);
        assert_eq!(s, 401, "{bad:.14}");
        g.up.assert_never(&m);
    }
}

#[test]
fn d03_two_authorization_lines_in_either_order_are_refused() {
    let g = gw(false);
    for lines in [
        format!(
            "authorization: {}\r\nauthorization: Bearer garbage-0000000000\r\n",
            s1()
        ),
        format!(
            "authorization: Bearer garbage-0000000000\r\nauthorization: {}\r\n",
            s1()
        ),
        format!("authorization: {}\r\nAuthorization: {}\r\n", s1(), s1()),
    ] {
        let (r, m) = g.raw("GET", "/api/proxy/svc/x", false, &lines);
        assert_eq!(r.status, 401);
        g.up.assert_never(&m);
    }
}

#[test]
fn d05_a_static_token_matches_exactly_or_not_at_all() {
    let g = gw(false);
    let mut flipped = S1.to_string();
    flipped.replace_range(0..1, "C");
    for bad in [
        S1[..S1.len() - 1].to_string(),
        format!("{S1}x"),
        format!("x{S1}"),
        flipped,
        S1.to_ascii_uppercase(),
    ] {
        let (r, m) = g.raw(
            "GET",
            "/api/proxy/svc/x",
            false,
            &format!("authorization: Bearer {bad}\r\n"),
        );
        assert_eq!(r.status, 401);
        g.up.assert_never(&m);
    }
}
