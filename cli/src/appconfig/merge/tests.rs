use super::*;
use crate::test_support::src;

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
