use super::*;
use crate::test_support::loaded;

#[test]
fn routes_group_endpoints_by_destination_authority_and_timeout() {
    let l = loaded("proxy:\n  endpoints:\n    /a: https://api.example.com\n    /b: https://api.example.com/v2\n    /c: {target: 'https://api.example.com', changeOrigin: false}\n    /d: {target: 'https://api.example.com', proxyTimeout: 5000}\n    /e: {target: 'http://other:8080', xfwd: true}\n");
    let plan = l.plan.as_ref().unwrap();
    let r = group_by_destination(plan, &|h, p, _| format!("{h}:{p}"));
    let values: Vec<&str> = r.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(
        values,
        [
            "api.example.com:443",
            "api.example.com:443;2",
            "api.example.com:443;3",
            "other:8080"
        ]
    );
    assert_eq!(r[0].endpoints, [0, 1]);
    assert_eq!(r[0].authority.as_deref(), Some("api.example.com"));
    assert_eq!(
        r[1].authority, None,
        "changeOrigin false keeps the client's Host"
    );
    assert_eq!(r[2].timeout_ms, Some(5000));
    assert!(r[3].xfwd);
}
