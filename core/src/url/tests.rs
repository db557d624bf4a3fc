use super::*;

#[test]
fn parses_targets() {
    let u = Url::parse("https://API.PagerDuty.com").unwrap();
    assert_eq!(
        (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
        ("https", "api.pagerduty.com", 443, "/")
    );
    assert_eq!(u.authority(), "api.pagerduty.com");
    assert_eq!(u.cluster_name(), "https_api.pagerduty.com_443");

    let u = Url::parse("http://h:9911/base/v1?k=v#frag").unwrap();
    assert_eq!(u.port, 9911);
    assert_eq!(u.path, "/base/v1");
    assert_eq!(u.query.as_deref(), Some("k=v"));
    assert_eq!(u.authority(), "h:9911");

    let u = Url::parse("http://[::1]:8080/x").unwrap();
    assert_eq!(u.host, "[::1]");
    assert_eq!(u.authority(), "[::1]:8080");
    assert_eq!(u.cluster_name(), "http____1__8080");

    assert_eq!(Url::parse("http://h:80/").unwrap().authority(), "h");
}

#[test]
fn rejects_non_urls() {
    for bad in [
        "backstage.io",
        "localhost:8080",
        "ftp://h/",
        "http://",
        "http://h:0/",
        "http://h:99999/",
        "http://h:x/",
        "http://user:pw@h/",
        "http://h /",
        "http://exa mple.com",
        "",
    ] {
        assert!(Url::parse(bad).is_err(), "{bad}");
    }
}
