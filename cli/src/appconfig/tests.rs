use super::*;

fn src(name: &str, yaml: &str) -> ConfigFile {
    load_yaml(name, yaml).unwrap()
}

#[test]
fn later_files_win_objects_merge_arrays_replace() {
    let a = src("a.yaml", "proxy:\n  endpoints:\n    /x: {target: 'http://a', allowedMethods: [GET, POST]}\n    /y: http://y\nbackend: {baseUrl: 'http://a'}\n");
    let b = src(
        "b.yaml",
        "proxy:\n  endpoints:\n    /x: {allowedMethods: [GET]}\nbackend: {baseUrl: 'http://b'}\n",
    );
    let m = merge(&[a, b]);
    assert_eq!(m.value["proxy"]["endpoints"]["/x"]["target"], "http://a");
    assert_eq!(
        m.value["proxy"]["endpoints"]["/x"]["allowedMethods"],
        serde_json::json!(["GET"])
    );
    assert_eq!(m.value["proxy"]["endpoints"]["/y"], "http://y");
    assert_eq!(m.value["backend"]["baseUrl"], "http://b");
    assert_eq!(m.file_of("proxy.endpoints./x.allowedMethods"), "b.yaml");
    assert_eq!(m.file_of("proxy.endpoints./x.allowedMethods[0]"), "b.yaml");
    assert_eq!(m.file_of("proxy.endpoints./x.target"), "a.yaml");
    assert_eq!(m.file_of("proxy.endpoints./y"), "a.yaml");
    // key order of the first file is kept (pathRewrite rules depend on it)
    let keys: Vec<&String> = m.value["proxy"]["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["/x", "/y"]);
}

#[test]
fn a_scalar_replacing_an_object_forgets_its_origins() {
    let a = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x: {target: 'http://a'}\n",
    );
    let b = src("b.yaml", "proxy:\n  endpoints:\n    /x: http://b\n");
    let m = merge(&[a, b]);
    assert_eq!(m.value["proxy"]["endpoints"]["/x"], "http://b");
    assert_eq!(m.file_of("proxy.endpoints./x.target"), "b.yaml");
}

#[test]
fn env_directives_resolve_except_in_header_values() {
    let env = |n: &str| match n {
        "TARGET" => Some("http://from-env".to_string()),
        "TOKEN" => Some("tok-0123456789".to_string()),
        _ => None,
    };
    let s = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x:\n      target: ${TARGET}\n      headers:\n        Authorization: 'Bearer ${SECRET}'\n        X-Key: {$env: KEY}\nbackend:\n  auth:\n    externalAccess:\n      - {type: static, options: {token: {$env: TOKEN}, subject: ci}}\n",
    );
    let l = load(&[s], &env);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["target"],
        "http://from-env"
    );
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["headers"]["Authorization"],
        "Bearer ${SECRET}"
    );
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["headers"]["X-Key"],
        "${KEY}"
    );
    assert_eq!(
        l.filter_config["backend"]["auth"]["externalAccess"][0]["options"]["token"],
        "tok-0123456789"
    );
    assert_eq!(l.vm_vars, ["KEY", "SECRET"]);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.contains("'SECRET' is not set here")));
}

#[test]
fn unsupported_directives_and_missing_variables_are_errors_with_their_file() {
    let a = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x: {$file: secret.txt}\n    /y: ${NOPE}\n",
    );
    let l = load(&[a], &|_| None);
    let msgs: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    assert!(msgs.iter().any(|m| m == "a.yaml: proxy.endpoints./x: $file is not supported by backstage-proxy-wasm; inline the value or use $env"), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m == "a.yaml: proxy.endpoints./y: environment variable 'NOPE' is not set"),
        "{msgs:?}"
    );
}

#[test]
fn only_the_parts_the_gateway_uses_are_taken() {
    let a = src("a.yaml", "app: {title: x}\ncatalog: {rules: []}\nbackend: {baseUrl: 'http://b', listen: {port: 7007}, database: {client: pg}, auth: {keys: [{secret: c2VjcmV0}]}}\nproxy: {endpoints: {}}\n");
    let l = load(&[a], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let keys: Vec<&String> = l.filter_config.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["proxy", "backend"]);
    let backend: Vec<&String> = l.filter_config["backend"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(backend, ["baseUrl", "auth"]);
}

#[test]
fn yaml_errors_name_the_file_and_location_only() {
    let e = load_yaml("bad.yaml", "proxy: [unclosed TOPSECRET").unwrap_err();
    assert!(e.to_string().starts_with("bad.yaml: not valid YAML"));
    assert!(!e.to_string().contains("TOPSECRET"));
    assert!(load_yaml("list.yaml", "- a\n- b\n").is_err());
    assert!(load_yaml("empty.yaml", "")
        .unwrap()
        .value
        .as_object()
        .unwrap()
        .is_empty());
}
