use super::*;

fn perm(name: &str, action: Option<Action>) -> Permission {
    Permission {
        name: name.into(),
        action,
    }
}

fn restriction(names: Option<&[&str]>, actions: Option<&[Action]>) -> Restriction {
    Restriction {
        names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
        actions: actions.map(<[Action]>::to_vec),
    }
}

/// Backstage's server-side client, case by case: the same table its
/// `ServerPermissionClient` answers (`docs/permissions.md#who-is-asked`).
#[test]
fn service_principals_are_answered_as_backstage_answers_them() {
    use Action::*;
    let read = perm("proxy.endpoint.a", Some(Read));
    let update = perm("proxy.endpoint.a", Some(Update));
    let bare = perm("proxy.endpoint.a", None);
    let other = perm("proxy.endpoint.b", Some(Read));
    // No restrictions, or an entry naming only the plugin: everything.
    for r in [None, Some(Restriction::default())] {
        for p in [&read, &update, &bare, &other] {
            assert!(service_allows(r.as_ref(), p), "{r:?} {p:?}");
        }
    }
    // Names only: a listed name whatever its action; nothing else.
    let names = restriction(Some(&["proxy.endpoint.a"]), None);
    assert!(service_allows(Some(&names), &read));
    assert!(service_allows(Some(&names), &update));
    assert!(service_allows(Some(&names), &bare));
    assert!(!service_allows(Some(&names), &other));
    // Actions only: any name with a listed action; no action is refused.
    let actions = restriction(None, Some(&[Read]));
    assert!(service_allows(Some(&actions), &read));
    assert!(service_allows(Some(&actions), &other));
    assert!(!service_allows(Some(&actions), &update));
    assert!(!service_allows(Some(&actions), &bare));
    // Both: both must hold.
    let both = restriction(Some(&["proxy.endpoint.a"]), Some(&[Read]));
    assert!(service_allows(Some(&both), &read));
    assert!(!service_allows(Some(&both), &update));
    assert!(!service_allows(Some(&both), &bare));
    assert!(!service_allows(Some(&both), &other));
    // Names compare exactly, as Backstage's `includes` does.
    let upper = perm("Proxy.Endpoint.A", Some(Read));
    assert!(!service_allows(Some(&names), &upper));
}

#[test]
fn the_request_body_is_the_one_the_permission_backend_accepts() {
    let body = perm("proxy.endpoint.pd.write", Some(Action::Update)).request_body("id-1");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"items":[{"id":"id-1","permission":{"type":"basic","name":"proxy.endpoint.pd.write","attributes":{"action":"update"}}}]})
    );
    // `attributes` is sent even without an action: the backend answers 400
    // to an item without it.
    let v: serde_json::Value = serde_json::from_str(&perm("p", None).request_body("x")).unwrap();
    assert_eq!(
        v["items"][0]["permission"]["attributes"],
        serde_json::json!({})
    );
    // A name with quotes stays one JSON string.
    let v: serde_json::Value = serde_json::from_str(&perm("a\"b", None).request_body("x")).unwrap();
    assert_eq!(v["items"][0]["permission"]["name"], "a\"b");
}

#[test]
fn only_a_one_item_list_with_the_id_asked_is_an_answer() {
    let ok = |b: &str| parse_answer(b.as_bytes(), "q1");
    assert_eq!(
        ok(r#"{"items":[{"id":"q1","result":"ALLOW"}]}"#),
        Ok(Answer::Allow)
    );
    assert_eq!(
        ok(r#"{"items":[{"id":"q1","result":"DENY"}]}"#),
        Ok(Answer::Deny)
    );
    // Extra keys a policy put in its decision are ignored, as Backstage's
    // client ignores them.
    assert_eq!(
        ok(r#"{"items":[{"id":"q1","result":"ALLOW","note":"x"}],"more":1}"#),
        Ok(Answer::Allow)
    );
    for bad in [
        "",
        "not json",
        "{}",
        r#"{"items":{}}"#,
        r#"{"items":[]}"#,
        r#"{"items":[{"id":"q2","result":"ALLOW"}]}"#,
        r#"{"items":[{"result":"ALLOW"}]}"#,
        r#"{"items":[{"id":"q1","result":"allow"}]}"#,
        r#"{"items":[{"id":"q1","result":"CONDITIONAL","conditions":{}}]}"#,
        r#"{"items":[{"id":"q1","result":["ALLOW"]}]}"#,
        r#"{"items":[{"id":"q1","result":"ALLOW"},{"id":"q1","result":"ALLOW"}]}"#,
        r#"{"items":[{"id":"q1","result":"DENY"},{"id":"q1","result":"ALLOW"}]}"#,
        r#"{"error":{"name":"Error","message":"policy exploded"}}"#,
    ] {
        assert!(ok(bad).is_err(), "{bad}");
    }
}

#[test]
fn labels_name_the_action() {
    assert_eq!(perm("a.b", None).label(), "a.b");
    assert_eq!(perm("a.b", Some(Action::Delete)).label(), "a.b:delete");
    for a in Action::ALL {
        assert_eq!(Action::parse(a.as_str()), Some(a));
    }
    assert_eq!(Action::parse("use"), None);
    assert_eq!(Action::parse("Read"), None);
}
