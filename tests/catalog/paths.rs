//! A. Route matching and path handling (`docs/security.md#the-cases`).

use std::thread;
use std::time::Duration;

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn a01_a02_a04_dot_segments_raw_encoded_and_backslashed_never_leave_the_base() {
    for n in MODES {
        let g = gw(n);
        for t in [
            "/api/proxy/svc/../admin",
            "/api/proxy/svc/%2e%2e/admin",
            "/api/proxy/svc/%2E%2e/admin",
            "/api/proxy/svc/.%2e/admin",
            "/api/proxy/svc/%2e./admin",
            "/api/proxy/svc/./admin",
            "/api/proxy/svc\\..\\admin",
            "/api/proxy/svc/x/..",
        ] {
            // off: the filter's 400; on: Envoy resolved the dot segments and
            // the canonical path has no endpoint (404 after credentials), or
            // Envoy refused the path itself (400)
            if n {
                g.refused_or_confined(t, "/base/", mode(n));
            } else {
                g.refused(t, true, &[400], mode(n));
            }
        }
    }
}

#[test]
fn a03_encoded_separators_around_dot_segments_are_refused() {
    for n in MODES {
        let g = gw(n);
        for t in [
            "/api/proxy/svc/a%2f..%2f..%2fadmin",
            "/api/proxy/svc/a%2F..%2F..%2Fadmin",
            "/api/proxy/svc/a%5c..%5c..%5cadmin",
            "/api/proxy/svc/a%5C..%5Cadmin",
        ] {
            g.refused(t, true, &[400], mode(n));
        }
    }
}

#[test]
fn a05_normalised_traversal_stays_under_the_base_or_is_refused() {
    for n in MODES {
        let g = gw(n);
        let want: &[u16] = if n { &[400, 404] } else { &[400] };
        g.refused("/api/proxy/svc/x/../../../etc", true, want, mode(n));
        g.refused(
            "/api/proxy/svc/x/%2e%2e/%2e%2e/%2e%2e/etc",
            true,
            want,
            mode(n),
        );
    }
}

#[test]
fn a06_repeated_slashes_decide_like_the_single_slash_form() {
    for n in MODES {
        let g = gw(n);
        for t in [
            "//api/proxy/svc/x",
            "/api/proxy//svc/x",
            "/api/proxy/svc//x",
            "/api//proxy/svc/x",
        ] {
            g.routed(t, "/base/x", mode(n));
        }
        // an open endpoint reached through doubled slashes is still only
        // the open one; the protected child still needs credentials
        g.refused("/api/proxy//pub//priv/x", false, &[401], mode(n));
    }
}

#[test]
fn a07_path_parameters_never_route_one_endpoint_under_another_ones_policy() {
    for n in MODES {
        let g = gw(n);
        // `;` is segment text: `svc;x=1` is not the key `svc` → no endpoint
        g.refused("/api/proxy/svc;x=1/a", false, &[401], mode(n));
        g.refused("/api/proxy/svc;x=1/a", true, &[404], mode(n));
        // `..;x` is a dot segment to servlet-style upstreams. Off: the filter
        // refuses it. On: Envoy strips the parameter and resolves it first,
        // so the request is `/svc/a` and decided as `/svc` (credentials
        // required), never as the open `/pub`.
        if n {
            g.routed("/api/proxy/pub/..;x=1/svc/a", "/base/a", mode(n));
        } else {
            g.refused("/api/proxy/pub/..;x=1/svc/a", false, &[400], mode(n));
            g.refused("/api/proxy/pub/..;x=1/svc/a", true, &[400], mode(n));
        }
        // a parameter inside a segment below the key is forwarded as sent
        g.routed("/api/proxy/svc/a;x=y", "/base/a;x=y", mode(n));
    }
}

#[test]
fn a08_fragments_are_neither_matched_nor_forwarded_and_percent_23_stays() {
    for n in MODES {
        let g = gw(n);
        // Envoy 1.39 refuses a request-target with a fragment (400) before
        // any filter; were it stripped instead, only `/base/a` could arrive
        let (r, m) = g.raw("GET", "/api/proxy/svc/a#x/../../admin", true, "");
        if r.status == 200 {
            let seen = g.up.find(&m).unwrap();
            assert!(!seen.target.contains('#'), "{}", seen.target);
            assert!(seen.target.starts_with("/base/a?"), "{}", seen.target);
        } else {
            assert_eq!(r.status, 400, "{}", mode(n));
            g.up.assert_never(&m);
        }
        g.routed("/api/proxy/svc/a%23b", "/base/a%23b", mode(n));
        // a fragment cannot hide the endpoint either
        g.refused("/api/proxy/svc#/../pub/x", false, &[401, 400], mode(n));
    }
}

#[test]
fn a09_the_query_is_forwarded_byte_for_byte_and_never_matched() {
    for n in MODES {
        let g = gw(n);
        g.routed(
            "/api/proxy/svc?x=/../../admin",
            "/base/?x=/../../admin",
            mode(n),
        );
        g.routed("/api/proxy/svc/a?b=%2f..", "/base/a?b=%2f..", mode(n));
        g.routed(
            "/api/proxy/svc/a?q=%2e%2e&r=a+b&s=%7e",
            "/base/a?q=%2e%2e&r=a+b&s=%7e",
            mode(n),
        );
        // a query that looks like another endpoint does not select it
        g.refused("/api/proxy/nope?/api/proxy/pub", true, &[404], mode(n));
    }
}

#[test]
fn a10_a15_segment_boundaries_and_the_default_prefix_strip() {
    for n in MODES {
        let g = gw(n);
        g.refused("/api/proxy/svcextra/x", false, &[401], mode(n));
        g.refused("/api/proxy/svcextra/x", true, &[404], mode(n));
        g.routed("/api/proxy/svc", "/base/", mode(n));
        g.routed("/api/proxy/svc/", "/base/", mode(n));
        g.routed("/api/proxy/svc/a?q=1", "/base/a?q=1", mode(n));
    }
}

#[test]
fn a11_b08_an_open_parent_never_opens_its_protected_child() {
    for reversed in [false, true] {
        let fresh;
        let g = if reversed {
            fresh = start(false, true);
            &fresh
        } else {
            gw(false)
        };
        let why = if reversed {
            "keys in reverse order"
        } else {
            "keys in order"
        };
        // the child needs credentials and its injected upstream credential
        // is never sent for an unauthenticated request
        g.refused("/api/proxy/pub/priv/x", false, &[401], why);
        let (r, m) = g.raw("GET", "/api/proxy/pub/priv/x", true, "");
        assert_eq!(r.status, 200, "{why}");
        let seen = g.priv_up.find(&m).unwrap();
        assert!(
            seen.target.starts_with("/priv/x?"),
            "{why}: {}",
            seen.target
        );
        // B07: set, not added: exactly the configured credential, once
        assert_eq!(
            seen.all("authorization"),
            vec![UPSTREAM_CREDENTIAL],
            "{why}"
        );
        // the parent itself is open, and never gets the child's credential
        let (r, m) = g.raw("GET", "/api/proxy/pub/x", false, "");
        assert_eq!(r.status, 200, "{why}");
        let seen = g.up.find(&m).unwrap();
        assert!(seen.target.starts_with("/pub/x?"), "{why}: {}", seen.target);
        assert_eq!(seen.header("authorization"), None, "{why}");
    }
}

#[test]
fn a12_case_variants_are_routed_with_the_endpoints_own_credentials() {
    for n in MODES {
        let g = gw(n);
        for t in ["/API/PROXY/SVC/x", "/api/proxy/SVC/x", "/Api/Proxy/Svc/x"] {
            g.routed(t, "/base/x", mode(n));
        }
        g.refused("/API/PROXY/PUB/PRIV/x", false, &[401], mode(n));
    }
}

#[test]
fn a13_percent_encoded_unreserved_characters_in_the_key() {
    // off: the filter does not decode, so `%73vc` is not the key `svc` → no
    // endpoint (after credentials); on: Envoy decoded it to `svc` first.
    let off = gw(false);
    off.refused("/api/proxy/%73vc/x", false, &[401], mode(false));
    off.refused("/api/proxy/%73vc/x", true, &[404], mode(false));
    let on = gw(true);
    on.routed("/api/proxy/%73vc/x", "/base/x", mode(true));
    // neither mode opens anything: %70ub (pub) never reaches pub's child
    for n in MODES {
        gw(n).refused("/api/proxy/%70ub/priv/x", false, &[401], mode(n));
    }
}

#[test]
fn a14_nul_and_control_characters_are_refused() {
    for n in MODES {
        let g = gw(n);
        g.refused("/api/proxy/svc/a%00b", true, &[400], mode(n));
        g.refused(
            "/api/proxy/svc/a%0d%0aX-Injected:%20x",
            true,
            &[400],
            mode(n),
        );
        g.refused("/api/proxy/svc/a%7f", true, &[400], mode(n));
        // raw control bytes never get past Envoy's codec
        g.refused("/api/proxy/svc/a\x01b", true, &[400], mode(n));
        // NUL in a header value: Envoy's codec refuses it
        let (r, m) = g.raw("GET", "/api/proxy/svc/x", true, "x-custom: a\0b\r\n");
        assert_eq!(r.status, 400, "{}", mode(n));
        g.up.assert_never(&m);
    }
}

#[test]
fn a16_double_encoding_is_forwarded_unchanged() {
    for n in MODES {
        gw(n).routed(
            "/api/proxy/svc/%252e%252e/admin",
            "/base/%252e%252e/admin",
            mode(n),
        );
    }
}

#[test]
fn a17_a18_rewrites_follow_javascript_and_never_produce_an_authority() {
    for n in MODES {
        let g = gw(n);
        // `$1a` is group 1 then a literal `a`, as in JavaScript
        let (r, m) = g.raw("GET", "/api/proxy/rw/v1/foo", true, "");
        assert_eq!(r.status, 200, "{}", mode(n));
        // (the rule applies to path and query, as Backstage's does: group 1
        // is `foo?m=<mark>`, then the literal `a`)
        let seen = g.up.find(&m).unwrap();
        assert_eq!(seen.target, format!("/v2/foo?m={m}a"));
        // a rewrite to `//evil.test/x` is refused, never forwarded
        g.refused("/api/proxy/evil-rw/x", true, &[400, 500], mode(n));
    }
}

#[test]
fn a19_a21_keys_are_literal_text_and_sub_delims_are_segment_characters() {
    for n in MODES {
        let g = gw(n);
        g.refused("/api/proxy/aXb/x", true, &[404], mode(n));
        g.routed("/api/proxy/a.b/x", "/dot/x", mode(n));
        g.routed("/api/proxy/svc/*!$'(),=+@:", "/base/*!$'(),=+@:", mode(n));
    }
}

#[test]
fn a20_overlong_utf8_is_not_a_dot_segment_and_does_not_trap() {
    for n in MODES {
        let g = gw(n);
        g.refused("/api/proxy/svc/%c0%ae%c0%ae/admin", true, &[400], mode(n));
        g.refused("/api/proxy/svc/%ff/admin", true, &[400], mode(n));
        g.refused("/api/proxy/svc/\u{e9}", true, &[400], mode(n));
        // the VM is alive and well afterwards
        g.routed("/api/proxy/svc/ok", "/base/ok", mode(n));
    }
}

#[test]
fn a22_a_60_kib_path_is_refused_in_bounded_time_without_growing_the_vm() {
    for n in MODES {
        let g = gw(n);
        let before = g.vm_memory();
        let long = format!("/api/proxy/svc/{}", "a".repeat(60 * 1024));
        let started = std::time::Instant::now();
        g.refused(&long, true, &[400, 413, 414, 431], mode(n));
        assert!(started.elapsed() < Duration::from_secs(5));
        // a long one that fits is handled, and the memory gauge holds
        let fits = format!("/api/proxy/svc/{}", "b".repeat(30 * 1024));
        let (r, _) = g.raw("GET", &fits, true, "");
        assert_eq!(r.status, 200, "{}", mode(n));
        thread::sleep(Duration::from_millis(300));
        let after = g.vm_memory();
        assert!(
            after <= before + 256 * 1024,
            "{}: VM memory {before} → {after}",
            mode(n)
        );
    }
}

#[test]
fn a23_requests_without_a_usable_path_do_not_trap() {
    for n in MODES {
        let g = gw(n);
        for raw in [
            "CONNECT upstream.test:443 HTTP/1.1\r\nhost: upstream.test:443\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n",
        ] {
            let before = g.up.count() + g.priv_up.count();
            let status = http(g.envoy.port, raw).map(|r| r.status).unwrap_or(0);
            assert!(
                !(200..300).contains(&status),
                "{}: {raw:?} answered {status}",
                mode(n)
            );
            assert_eq!(g.up.count() + g.priv_up.count(), before);
        }
        g.routed("/api/proxy/svc/after", "/base/after", mode(n));
    }
}

#[test]
fn a24_absolute_form_routes_by_path_and_the_host_never_reaches_the_upstream() {
    for n in MODES {
        let g = gw(n);
        let m = unique();
        let raw = format!(
            "GET http://evil.test/api/proxy/svc/x?m={m} HTTP/1.1\r\nhost: gw.test\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
            s1()
        );
        let r = g.envoy.send(&raw);
        assert_eq!(r.status, 200, "{}", mode(n));
        let seen = g.up.find(&m).unwrap();
        assert!(seen.target.starts_with("/base/x?"), "{}", seen.target);
        assert_eq!(
            seen.header("host"),
            Some(format!("127.0.0.1:{}", g.up.port).as_str())
        );
        for (name, value) in &seen.headers {
            assert!(!value.contains("evil.test"), "{name}: {value}");
        }
    }
}

#[test]
fn a25_unknown_endpoints_are_404_after_credentials_never_a_default() {
    for n in MODES {
        let g = gw(n);
        g.refused("/api/proxy/nope/x", false, &[401], mode(n));
        g.refused("/api/proxy/nope/x", true, &[404], mode(n));
        g.refused("/api/proxy", true, &[404], mode(n));
        g.refused("/api/proxy/", true, &[404], mode(n));
    }
}
