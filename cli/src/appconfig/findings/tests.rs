use std::collections::BTreeSet;

use crate::appconfig::{load, Loaded};
use crate::test_support::src;

/// The values the app-configs below give their variables: each valid
/// where it goes, as in a deployment that has them all.
const SET: [(&str, &str); 8] = [
    ("SONAR_TOKEN", "sonar-token-0123456789"),
    ("TARGET_URL", "http://svc.example:8080/api"),
    ("CI_TOKEN", "ci-token-0123456789"),
    ("PREFIX", "/api/proxy"),
    ("ORIGIN", "https://backstage.example.com"),
    ("HEADERS", "X-Api-Key: x"),
    ("JWKS_URL", "https://login.example.com/jwks.json"),
    ("METHODS", "GET"),
];

/// App-configs whose variables are in places of every kind: an unknown
/// key whose value is a variable (in an endpoint, `gateway`, an external
/// access entry, `backend.cors`), a variable where an object is needed,
/// variables in values the gateway needs or can do without (an endpoint
/// that `gateway` names), `${VAR}` and `{$env: VAR}`, and configurations
/// without a mistake.
const APP_CONFIGS: [&str; 8] = [
    "proxy:\n  endpoints:\n    /sonarqube:\n      target: https://sonarqube.example.com/api\n      autth: '${SONAR_TOKEN}:'\n",
    "proxy:\n  endpoints:\n    /svc:\n      target: ${TARGET_URL}\n      headers: ${HEADERS}\n",
    "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {token: '${CI_TOKEN}', subject: ci, tokn: {$env: CI_TOKEN}}\nproxy:\n  endpoints:\n    /svc: ${TARGET_URL}\n",
    "gateway:\n  prefx: ${PREFIX}\nbackend:\n  cors:\n    orign: ${ORIGIN}\n    origin: ${ORIGIN}\n",
    "proxy:\n  endpoints:\n    /svc:\n      target: ${TARGET_URL}\n      allowedMethods: ${METHODS}\n      credentials: require\nbackend:\n  baseUrl: http://backstage:7007\n  auth:\n    externalAccess:\n      - type: jwks\n        options: {url: '${JWKS_URL}', issuer: https://login.example.com}\n",
    "proxy:\n  endpoints:\n    /svc: {target: '${TARGET_URL}', headers: {Authorization: 'Bearer ${SONAR_TOKEN}'}, alowedMethods: '${METHODS}'}\n",
    "gateway:\n  prefix: ${PREFIX}\nproxy:\n  endpoints:\n    /svc: ${TARGET_URL}\n",
    "proxy:\n  endpoints:\n    /svc: ${TARGET_URL}\n    /other:\n      target: ${TARGET_URL}\n      credentials: require\ngateway:\n  access:\n    /svc: {allow: [user]}\n    /other: {allow: [user]}\n  rateLimits:\n    /svc: {total: {requests: 10, seconds: 60}}\n    /other: {}\n",
];

/// The errors that are not about a variable being unset: (file, path,
/// message).
fn structural(l: &Loaded) -> BTreeSet<(String, String, String)> {
    l.errors
        .iter()
        .filter(|e| !e.message.starts_with("environment variable '"))
        .map(|e| (e.file.clone(), e.path.clone(), e.message.clone()))
        .collect()
}

/// `check` gives every app-config the same errors whether its variables
/// are all set or none is (besides saying which are unset): an unset
/// variable makes its value absent, as in Backstage, but not its key, nor
/// the endpoint that other sections name. (Checks of what the values say,
/// such as whether two targets nest, need the values.)
#[test]
fn the_same_errors_with_and_without_the_variables() {
    let all_set = |name: &str| {
        SET.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    for yaml in APP_CONFIGS {
        let file = || src("app-config.yaml", yaml);
        let with = load(&[file()], &all_set);
        let without = load(&[file()], &|_| None);
        assert_eq!(structural(&with), structural(&without), "{yaml}");
        // Every error either way stops the plan.
        assert_eq!(with.plan.is_none(), !with.errors.is_empty(), "{yaml}");
        assert_eq!(without.plan.is_none(), !without.errors.is_empty(), "{yaml}");
    }
    // The class is not empty: the misspelt keys are errors both ways.
    let without = load(&[src("app-config.yaml", APP_CONFIGS[0])], &|_| None);
    let shown: Vec<String> = without.errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with(
            "app-config.yaml: proxy.endpoints./sonarqube.autth: unknown key 'autth'; expected one of target,"
        ),
        "{shown:?}"
    );
    assert_eq!(
        without.errors[0].at.map(|a| (a.line, a.column)),
        Some((5, 7))
    );
}

/// Every warning names the file and JSON path it is about, is given its
/// line there, and is given once, however many times it was found.
#[test]
fn warnings_name_their_file_and_path_once() {
    let base = src(
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /a: {target: 'https://a.example.com', secure: false, timeout: 1000}\n    /b: {target: 'http://b', headers: {X-K: '${B_KEY}'}, allowedMethods: [get]}\n",
    );
    let over = src(
        "app-config.production.yaml",
        "proxy:\n  endpoints:\n    /b:\n      headers:\n        X-K: '${B_KEY}'\n        X-L: '${B_KEY}'\n      allowedHeaders: ['${EXTRA_HEADER}']\n",
    );
    let l = load(&[base, over], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let shown: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let unique: BTreeSet<&String> = shown.iter().collect();
    assert_eq!(unique.len(), shown.len(), "{shown:#?}");
    for (file, path, line) in [
        ("app-config.yaml", "proxy.endpoints./a.secure", 3),
        ("app-config.yaml", "proxy.endpoints./a.timeout", 3),
        ("app-config.yaml", "proxy.endpoints./b.allowedMethods", 4),
        (
            "app-config.production.yaml",
            "proxy.endpoints./b.headers.X-K",
            5,
        ),
        (
            "app-config.production.yaml",
            "proxy.endpoints./b.allowedHeaders[0]",
            7,
        ),
    ] {
        let w = l
            .warnings
            .iter()
            .find(|w| w.path == path)
            .unwrap_or_else(|| panic!("no warning at {path}: {shown:#?}"));
        assert_eq!(
            (w.file.as_str(), w.at.map(|a| a.line)),
            (file, Some(line)),
            "{w:?}"
        );
    }
    assert!(
        l.warnings
            .iter()
            .all(|w| !w.file.is_empty() || w.path.is_empty()),
        "{shown:#?}"
    );
}
