//! `accessRestrictions`, read as Backstage reads them.

use super::*;
use crate::permission::{Action, Restriction};

#[test]
fn access_restrictions_are_validated() {
    let cfg = |r: &str| {
        format!(
            r#"{{"backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"12345678","subject":"s"}},"accessRestrictions":{r}}}]}}}}}}"#
        )
    };
    let p = ok(&cfg(
        r#"[{"plugin":"catalog"},{"plugin":"scaffolder","permission":"a, b a","permissionAttribute":{"action":["read","update read"]}}]"#,
    ));
    let r = p.auth.static_tokens[0].restrictions.as_deref().unwrap();
    let plugins: Vec<&str> = r.iter().map(|r| r.plugin.as_str()).collect();
    assert_eq!(plugins, ["catalog", "scaffolder"]);
    assert_eq!(r[0].permission, Restriction::default());
    assert_eq!(
        r[1].permission,
        Restriction {
            names: Some(vec!["a".into(), "b".into()]),
            actions: Some(vec![Action::Read, Action::Update]),
        }
    );
    assert!(has(
        &errors(&cfg(r#"[{"permission":"x"}]"#)),
        "accessRestrictions[0].plugin: is required"
    ));
    assert!(has(
        &errors(&cfg(
            r#"[{"plugin":"c","permissionAttribute":{"action":"destroy"}}]"#
        )),
        "unknown action 'destroy'"
    ));
    assert!(has(
        &errors(&cfg(r#"[{"plugin":"c","other":1}]"#)),
        "accessRestrictions[0].other: unknown key"
    ));
    assert!(has(
        &errors(&cfg("[]")),
        "accessRestrictions: must not be empty"
    ));
    // Backstage refuses a second entry for one plugin; so does the gateway
    // (silently merging or dropping one would change what the token may do).
    assert!(has(
        &errors(&cfg(
            r#"[{"plugin":"proxy","permission":"a"},{"plugin":"proxy"}]"#
        )),
        "accessRestrictions[1].plugin: 'proxy' has restrictions already"
    ));
    // An empty list would read as unset in Backstage: no restriction at all.
    for empty in [r#""""#, r#"" , ""#, "[]"] {
        assert!(
            has(
                &errors(&cfg(&format!(
                    r#"[{{"plugin":"proxy","permission":{empty}}}]"#
                ))),
                "accessRestrictions[0].permission: must not be empty"
            ),
            "{empty}"
        );
        assert!(
            has(
                &errors(&cfg(&format!(
                    r#"[{{"plugin":"proxy","permissionAttribute":{{"action":{empty}}}}}]"#
                ))),
                "accessRestrictions[0].permissionAttribute.action: must not be empty"
            ),
            "{empty}"
        );
    }
}
