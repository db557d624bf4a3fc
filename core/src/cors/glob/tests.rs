//! Origin patterns: the cases Backstage documents and users write, each
//! checked against what minimatch 9 answers (the differential test in
//! `core/tests/cors_reference.rs` covers generated ones).

use super::Pattern;

fn m(pattern: &str, origin: &str) -> bool {
    Pattern::compile(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .matches(origin)
}

#[test]
fn backstage_documented_patterns() {
    // The changeset that added globs to backend.cors.origin.
    assert!(m("https://*.my-domain.com", "https://app.my-domain.com"));
    assert!(m("https://*.my-domain.com", "HTTPS://APP.MY-DOMAIN.COM"));
    assert!(!m(
        "https://*.my-domain.com",
        "https://my-domain.com.evil.com"
    ));
    assert!(!m("https://*.my-domain.com", "https://a.b/c.my-domain.com"));
    assert!(m("http://localhost:700[0-9]", "http://localhost:7007"));
    assert!(!m("http://localhost:700[0-9]", "http://localhost:70070"));
    assert!(m(
        "https://sub-domain-+([0-9]).my-domain.com",
        "https://sub-domain-42.my-domain.com"
    ));
    assert!(!m(
        "https://sub-domain-+([0-9]).my-domain.com",
        "https://sub-domain-.my-domain.com"
    ));
}

#[test]
fn exact_origins_ignore_case_and_runs_of_slashes() {
    assert!(m("http://localhost:3000", "http://localhost:3000"));
    assert!(m("http://localhost:3000", "http://LOCALHOST:3000"));
    assert!(!m("http://localhost:3000", "http://localhost:30000"));
    assert!(!m("http://localhost:3000", "http://localhost:300"));
    assert!(!m("http://localhost:3000", "https://localhost:3000"));
    // minimatch splits on runs of `/` and allows one trailing `/`.
    assert!(m("http://localhost:3000", "http:/localhost:3000"));
    assert!(m("http://localhost:3000", "http:///localhost:3000/"));
    assert!(!m("http://localhost:3000/", "http://localhost:3000"));
    assert!(!m("http://localhost:3000", ""));
    assert!(!m("http://localhost:3000", "null"));
}

#[test]
fn wildcards_stay_inside_a_part_and_off_a_leading_dot() {
    assert!(m("*", "x"));
    assert!(!m("*", ""));
    assert!(!m("*", "https://x"));
    assert!(m("https://*", "https://x"));
    assert!(!m("https://*", "https://"));
    assert!(!m("https://*", "https://.x"));
    assert!(m("https://.*", "https://.x"));
    assert!(!m("https://.*", "https://.."));
    assert!(m("https://**", "https://x"));
    assert!(!m("https://**", "https://x/y"));
    assert!(m("https://a?.com", "https://ab.com"));
    assert!(!m("https://a?.com", "https://a/.com"));
    assert!(!m("https://?x.com", "https://.x.com"));
    assert!(m("https://x.com:*", "https://x.com:"));
}

#[test]
fn classes_braces_and_extglobs() {
    assert!(m("https://[a-c]x.com", "https://Bx.com"));
    assert!(!m("https://[!a]x.com", "https://ax.com"));
    assert!(m("https://[^a]x.com", "https://bx.com"));
    assert!(!m("https://[!a]x.com", "https://.x.com"));
    assert!(m("https://a[]b]", "https://a]"));
    assert!(m("https://{a,b}.x.com", "https://b.x.com"));
    assert!(!m("https://{a,b}.x.com", "https://c.x.com"));
    assert!(m("https://{,www.}a.com", "https://a.com"));
    assert!(m("https://{,www.}a.com", "https://www.a.com"));
    assert!(m("https://{a,{b,c}d}.com", "https://cd.com"));
    assert!(m("https://x*(a|b).com", "https://x.com"));
    assert!(m("https://x*(a|b).com", "https://xabba.com"));
    assert!(m("https://x?(a|b).com", "https://xa.com"));
    assert!(!m("https://x?(a|b).com", "https://xab.com"));
    assert!(m("https://x@(a|b).com", "https://xb.com"));
    assert!(!m("https://x@(a|b).com", "https://x.com"));
    assert!(m("https://a\\*.com", "https://a*.com"));
    assert!(!m("https://a\\*.com", "https://ab.com"));
    // Parentheses and bars outside an extglob are literal.
    assert!(m("https://a(b)|c.com", "https://a(b)|c.com"));
}

#[test]
fn negation_and_comments() {
    assert!(m("!https://evil.com", "https://good.com"));
    assert!(!m("!https://evil.com", "https://evil.com"));
    assert!(m("!!https://a.com", "https://a.com"));
    assert!(!m("#https://a.com", "https://a.com"));
    assert!(!m("#", "#"));
}

#[test]
fn what_the_gateway_does_not_support_is_refused_with_the_reason() {
    for (pattern, why) in [
        ("", "empty"),
        ("https://!(evil).com", "`!(..)`"),
        ("https://+(a|b).com", "extglob"),
        ("https://[[:alpha:]].com", "POSIX"),
        ("https://{1..3}.com", "braces"),
        ("https://{a}.com", "braces"),
        ("https://{a,b.com", "`{`"),
        ("https://a},b.com", "`}`"),
        ("https://[a.com", "`[`"),
        ("https://a@(b.com", "`(`"),
        ("https://a@(.b|c).com", "`.`"),
        ("https://bücher.de", "ASCII"),
    ] {
        let e = Pattern::compile(pattern).expect_err(pattern);
        assert!(e.contains(why), "{pattern}: {e}");
    }
    let long = format!("https://{}.com", "a".repeat(2000));
    assert!(Pattern::compile(&long).is_err());
    let many = "https://{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}.com";
    assert!(Pattern::compile(many).unwrap_err().contains("alternatives"));
}

#[test]
fn origins_that_are_not_ascii_never_match() {
    assert!(!m("https://*.com", "https://bücher.com"));
    assert!(!m("!https://a.com", "https://bücher.com"));
}
