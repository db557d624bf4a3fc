use super::*;
use crate::appconfig::load;
use crate::test_support::src;

/// `APP_CONFIG_<path>` overrides, applied after every file, values parsed
/// as JSON when they are JSON; a name Backstage would refuse is an error.
#[test]
fn app_config_environment_overrides() {
    let vars = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let over = env_overrides(&vars(&[
        ("APP_CONFIG_backend_baseUrl", "http://override:7007"),
        (
            "APP_CONFIG_proxy_endpoints",
            r#"{"/x": "http://x", "/y": {"target": "http://y", "allowedMethods": ["GET"]}}"#,
        ),
        ("APP_CONFIG_gateway_clockSkewSeconds", "5"),
        ("PATH", "/usr/bin"),
    ]))
    .unwrap()
    .unwrap();
    let file = src(
        "app-config.yaml",
        "backend: {baseUrl: 'http://file:7007'}\nproxy: {endpoints: {/z: 'http://z'}}\n",
    );
    let l = load(&[file, over], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(
        l.filter_config["backend"]["baseUrl"],
        "http://override:7007"
    );
    assert_eq!(l.filter_config["gateway"]["clockSkewSeconds"], 5);
    let keys: Vec<&String> = l.filter_config["proxy"]["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["/z", "/x", "/y"], "objects merge key by key");
    assert!(env_overrides(&vars(&[("PATH", "x")])).unwrap().is_none());
    assert!(
        env_overrides(&vars(&[("APP_CONFIG_a", "")]))
            .unwrap()
            .is_none(),
        "empty values are skipped"
    );
    let dashed = env_overrides(&vars(&[("APP_CONFIG_backend_base-url", "x")]))
        .unwrap()
        .unwrap();
    assert_eq!(
        dashed.value["backend"]["base-url"], "x",
        "a key part may hold '-'"
    );
    for bad in [
        "APP_CONFIG_",
        "APP_CONFIG_backend__x",
        "APP_CONFIG_1x",
        "APP_CONFIG_a-",
        "APP_CONFIG_a--b",
        "APP_CONFIG_a.b",
    ] {
        assert!(env_overrides(&vars(&[(bad, "v")])).is_err(), "{bad}");
    }
    assert!(
        env_overrides(&vars(&[("APP_CONFIG_a", "null")])).is_err(),
        "null is refused"
    );
    assert!(env_overrides(&vars(&[("APP_CONFIG_a", "1"), ("APP_CONFIG_a_b", "2")])).is_err());
}

#[test]
fn yaml_errors_name_the_file_and_location_only() {
    let e = load_yaml("bad.yaml", "proxy: [unclosed TOPSECRET").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad.yaml:1:8: not valid YAML: unclosed bracket"),
        "{e}"
    );
    assert!(!e.to_string().contains("TOPSECRET"));
    assert!(!e.excerpt.unwrap_or_default().contains("TOPSECRET"));
    assert!(load_yaml("list.yaml", "- a\n- b\n").is_err());
    assert!(load_yaml("empty.yaml", "")
        .unwrap()
        .value
        .as_object()
        .unwrap()
        .is_empty());
}
