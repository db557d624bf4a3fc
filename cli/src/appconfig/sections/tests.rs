use crate::appconfig::load;
use crate::test_support::src;

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
