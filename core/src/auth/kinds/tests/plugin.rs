//! Plugin-to-plugin tokens.

use super::*;

#[test]
fn plugin_tokens() {
    let p = plan();
    let cat = Es256::new(5, "cat-key");
    let auth = Es256::new(1, "auth-key");
    let sets = [
        (CATALOG_URL, key_set(&[&cat])),
        (AUTH_URL, key_set(&[&auth])),
    ];
    let mut state = AuthState::new(&p);
    let t = plugin_token(&cat, "catalog", "proxy", NOW, NOW + 3600, None);
    let (o, fetched) = drive(&p, &mut state, &t, NOW, &sets);
    assert_eq!(ok(&o), Principal::Plugin("plugin:catalog".into()));
    assert_eq!(fetched, [CATALOG_URL]);
    // on behalf of a user: the principal is that user
    let obo = limited_user_token(&auth, "user:default/jane", NOW, NOW + 600);
    let t = plugin_token(&cat, "catalog", "proxy", NOW, NOW + 600, Some(&obo));
    let (o, fetched) = drive(&p, &mut state, &t, NOW, &sets);
    assert_eq!(ok(&o), Principal::User("user:default/jane".into()));
    assert_eq!(fetched, [AUTH_URL]);
    // an obo signed by someone else
    let bad_obo = limited_user_token(
        &Es256::new(8, "auth-key"),
        "user:default/admin",
        NOW,
        NOW + 600,
    );
    let t = plugin_token(&cat, "catalog", "proxy", NOW, NOW + 600, Some(&bad_obo));
    assert_eq!(
        denied(&drive(&p, &mut state, &t, NOW, &sets).0).1,
        Reason::InvalidToken
    );
    // an obo that is not a user token at all
    let t = plugin_token(&cat, "catalog", "proxy", NOW, NOW + 600, Some("not-a-jwt"));
    assert_eq!(
        denied(&drive(&p, &mut state, &t, NOW, &sets).0).2,
        "Invalid user token in plugin token obo claim"
    );
    // wrong audience, forbidden subject, expired
    let t = plugin_token(&cat, "catalog", "scaffolder", NOW, NOW + 600, None);
    assert!(denied(&drive(&p, &mut state, &t, NOW, &sets).0)
        .2
        .starts_with("Invalid plugin token; caused by JWTClaimValidationFailed"));
    for sub in ["Catalog/../x", "cat alog", ""] {
        let t = plugin_token(&cat, sub, "proxy", NOW, NOW + 600, None);
        let (o, fetched) = drive(&p, &mut state, &t, NOW, &sets);
        assert_eq!(
            denied(&o).2,
            "Invalid plugin token: forbidden subject format"
        );
        assert!(fetched.is_empty());
    }
    let t = plugin_token(&cat, "catalog", "proxy", NOW - 7200, NOW - 3600, None);
    assert_eq!(
        denied(&drive(&p, &mut state, &t, NOW, &sets).0).1,
        Reason::InvalidPluginToken
    );
    // a plugin without a key set
    let other = plugin_token(&Es256::new(6, "x"), "search", "proxy", NOW, NOW + 600, None);
    let (o, fetched) = drive(&p, &mut state, &other, NOW, &sets);
    assert_eq!(
        fetched,
        ["http://backstage:7007/api/search/.backstage/auth/v1/jwks.json"]
    );
    assert_eq!(denied(&o).2, "Received a plugin token where the source plugin unexpectedly does not have a JWKS endpoint");
}

/// `gateway.plugins` names the plugins that exist: another plugin's token
/// is refused without a fetch (a flood of forged plugin tokens learns and
/// rations nothing), and the named plugins' key sets are configured ones.
#[test]
fn with_a_plugin_list_other_plugins_are_refused_without_a_fetch() {
    let cfg = r#"{"backend":{"baseUrl":"http://backstage:7007"},"gateway":{"plugins":["catalog","scaffolder"]}}"#;
    let p = parse(cfg.as_bytes(), &|_| None).unwrap();
    let cat = Es256::new(5, "cat-key");
    let sets = [(CATALOG_URL, key_set(&[&cat]))];
    let mut state = AuthState::new(&p);
    assert!(
        state.keys.is_pinned(CATALOG_URL),
        "fetched at start, never rationed"
    );
    for sub in ["kubernetes", "evil", "catalog2"] {
        let t = plugin_token(&cat, sub, "proxy", NOW, NOW + 600, None);
        let (o, fetched) = drive(&p, &mut state, &t, NOW, &sets);
        assert_eq!(denied(&o).1, Reason::KeySetUnavailable, "{sub}");
        assert!(fetched.is_empty(), "{sub}: {fetched:?}");
    }
    // A listed plugin, in any letter case, verifies against its own set.
    for sub in ["catalog", "Catalog"] {
        let t = plugin_token(&cat, sub, "proxy", NOW, NOW + 600, None);
        let (o, _) = drive(&p, &mut state, &t, NOW, &sets);
        assert_eq!(ok(&o), Principal::Plugin("plugin:catalog".into()), "{sub}");
    }
    assert_eq!(state.keys.learnt(), 0, "nothing learnt from requests");
    // Bad lists are load errors with their path.
    for (list, path) in [
        (r#"["Catalog"]"#, "gateway.plugins[0]"),
        (r#"["catalog","catalog"]"#, "gateway.plugins[1]"),
        (r#"[1]"#, "gateway.plugins[0]"),
    ] {
        let cfg = format!(r#"{{"gateway":{{"plugins":{list}}}}}"#);
        let errs = parse(cfg.as_bytes(), &|_| None).unwrap_err();
        assert!(errs.iter().any(|e| e.path == path), "{list}: {errs:?}");
    }
}
