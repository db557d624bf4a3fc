//! Who a policy admits: entity references in any case, the first of
//! several matching rules, and which methods a rule's methods hold for.

use super::*;

/// Every spelling of a user's, a group's and a plugin's entity reference,
/// in the policy and in the token, is one reference
/// (`docs/access.md#principals`); an external subject is compared as
/// given.
#[test]
fn entity_references_in_policies_compare_without_regard_to_case() {
    for matcher in [
        "user:default/jane",
        "user:Default/Jane",
        "user:DEFAULT/JANE",
    ] {
        let p = plan(&format!(r#"{{"/pd":{{"allow":["{matcher}"]}}}}"#));
        for sub in [
            "user:default/jane",
            "user:default/Jane",
            "User:Default/JANE",
            "USER:DEFAULT/JANE",
        ] {
            assert!(
                allows(&p, "/pd", "GET", "", &user(sub, None)),
                "{matcher} admits {sub}"
            );
        }
        for other in [
            "user:default/janet",
            "user:default/jan",
            "user:other/jane",
            "user:DEFAULT/JOHN",
        ] {
            assert!(
                !allows(&p, "/pd", "GET", "", &user(other, None)),
                "{matcher} refuses {other}"
            );
        }
    }
    for matcher in [
        "group:default/sre",
        "group:Default/SRE",
        "group:DEFAULT/Sre",
    ] {
        let p = plan(&format!(r#"{{"/pd":{{"allow":["{matcher}"]}}}}"#));
        for (sub, ent) in [
            ("user:default/bob", "group:default/sre"),
            ("user:default/alice", "group:Default/Sre"),
            ("user:default/carol", "GROUP:DEFAULT/SRE"),
        ] {
            let member = user(sub, Some(&[sub, "group:default/dev", ent]));
            assert!(
                allows(&p, "/pd", "GET", "", &member),
                "{matcher} admits {sub} in {ent}"
            );
        }
        for ent in [
            "group:default/sres",
            "group:default/sr",
            "group:other/sre",
            "user:default/sre",
        ] {
            let outsider = user("user:default/eve", Some(&["user:default/eve", ent]));
            assert!(
                !allows(&p, "/pd", "GET", "", &outsider),
                "{matcher} refuses a member of {ent}"
            );
        }
    }
    for matcher in [
        "plugin:scaffolder",
        "plugin:Scaffolder",
        "plugin:SCAFFOLDER",
    ] {
        let p = plan(&format!(r#"{{"/pd":{{"allow":["{matcher}"]}}}}"#));
        for sub in [
            "plugin:scaffolder",
            "plugin:Scaffolder",
            "plugin:SCAFFOLDER",
        ] {
            assert!(
                allows(&p, "/pd", "GET", "", &service(sub)),
                "{matcher} admits {sub}"
            );
        }
        assert!(!allows(
            &p,
            "/pd",
            "GET",
            "",
            &service("plugin:scaffolder2")
        ));
    }
    // A subject is the issuer's: compared as given.
    let p = plan(r#"{"/pd":{"allow":["subject:ci-Pipeline"]}}"#);
    assert!(allows(&p, "/pd", "GET", "", &service("ci-Pipeline")));
    for other in ["ci-pipeline", "CI-PIPELINE", "ci-Pipeline2"] {
        assert!(!allows(&p, "/pd", "GET", "", &service(other)), "{other}");
    }
}

/// Two rules that both match one request: the first in the list decides,
/// whatever the later ones or the endpoint's `allow` would say
/// (`docs/access.md#how-a-policy-decides`).
#[test]
fn when_several_rules_match_one_request_the_first_decides() {
    let rules = [
        r#"{"methods":["POST","DELETE"],"path":"/incidents","allow":["group:default/sre"]}"#,
        r#"{"path":"/incidents","allow":["user:default/oncall-lead"]}"#,
        r#"{"allow":["subject:ci"]}"#,
    ];
    let lead = user(
        "user:default/oncall-lead",
        Some(&["user:default/oncall-lead"]),
    );
    let sre = [
        user("user:default/bob", Some(&["group:default/sre"])),
        user(
            "user:default/alice",
            Some(&["group:default/dev", "group:default/sre"]),
        ),
    ];
    let ci = service("ci");
    let p = plan(&format!(
        r#"{{"/pd":{{"allow":["user"],"rules":[{},{},{}]}}}}"#,
        rules[0], rules[1], rules[2]
    ));
    for (method, rest) in [
        ("POST", "/incidents"),
        ("DELETE", "/incidents/7"),
        ("POST", "/incidents/7/notes"),
    ] {
        for member in &sre {
            assert!(allows(&p, "/pd", method, rest, member), "{method} {rest}");
        }
        // The second and third rules would admit them: the first decides.
        assert!(!allows(&p, "/pd", method, rest, &lead), "{method} {rest}");
        assert!(!allows(&p, "/pd", method, rest, &ci), "{method} {rest}");
    }
    // In every spelling servers read as the first rule's, it decides.
    for (method, rest) in [
        ("post", "/incidents"),
        ("POST", "/INCIDENTS"),
        ("POST", "/%69ncidents/1"),
        ("DELETE", "/incidents;v=1"),
    ] {
        assert!(!allows(&p, "/pd", method, rest, &lead), "{method} {rest}");
        assert!(!allows(&p, "/pd", method, rest, &ci), "{method} {rest}");
    }
    // Not the first rule's method: the second decides, not the third.
    for (method, rest) in [("GET", "/incidents"), ("PUT", "/incidents/7")] {
        assert!(allows(&p, "/pd", method, rest, &lead), "{method} {rest}");
        for who in sre.iter().chain([&ci]) {
            assert!(!allows(&p, "/pd", method, rest, who), "{method} {rest}");
        }
    }
    // Neither: the third, never the endpoint's allow.
    for (method, rest) in [("GET", "/services"), ("POST", ""), ("DELETE", "/x")] {
        assert!(allows(&p, "/pd", method, rest, &ci), "{method} {rest}");
        for who in sre.iter().chain([&lead]) {
            assert!(!allows(&p, "/pd", method, rest, who), "{method} {rest}");
        }
    }
    // The same rules in the other order: the other rule decides.
    let q = plan(&format!(
        r#"{{"/pd":{{"allow":["user"],"rules":[{},{},{}]}}}}"#,
        rules[1], rules[0], rules[2]
    ));
    for (method, rest) in [("POST", "/incidents"), ("DELETE", "/incidents/7")] {
        assert!(allows(&q, "/pd", method, rest, &lead), "{method} {rest}");
        for member in &sre {
            assert!(!allows(&q, "/pd", method, rest, member), "{method} {rest}");
        }
    }
}

/// A rule's methods: `GET` holds for `HEAD` and nothing else does; no
/// other method stands for another (`docs/access.md#how-a-policy-decides`).
#[test]
fn a_rule_for_get_holds_for_head_and_no_other_rule_does() {
    let ci = service("ci");
    let ops = service("ops");
    // Refusing rules, one per method: each refuses ci its own method only.
    for rule in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let p = plan(&format!(
            r#"{{"/pd":{{"allow":["subject:ci","subject:ops"],"rules":[{{"methods":["{rule}"],"allow":["subject:ops"]}}]}}}}"#
        ));
        assert!(!allows(&p, "/pd", rule, "/x", &ci), "{rule}");
        assert!(allows(&p, "/pd", rule, "/x", &ops), "{rule}");
        for method in ["HEAD", "head", "GET"] {
            assert!(
                allows(&p, "/pd", method, "/x", &ci),
                "a rule for {rule} does not hold for {method}"
            );
        }
    }
    let get = plan(
        r#"{"/pd":{"allow":["subject:ci","subject:ops"],"rules":[{"methods":["GET"],"allow":["subject:ops"]}]}}"#,
    );
    for method in ["GET", "HEAD", "head", "Head", "get"] {
        assert!(!allows(&get, "/pd", method, "/x", &ci), "{method}");
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEADX"] {
        assert!(
            allows(&get, "/pd", method, "/x", &ci),
            "a rule for GET does not hold for {method}"
        );
    }
    assert!(crate::access::method_matches("GET", "HEAD"));
    assert!(crate::access::method_matches("GET", "head"));
    assert!(crate::access::method_matches("POST", "post"));
    for (rule, request) in [
        ("POST", "HEAD"),
        ("HEAD", "GET"),
        ("GET", "POST"),
        ("PUT", "POST"),
        ("DELETE", "head"),
    ] {
        assert!(
            !crate::access::method_matches(rule, request),
            "{rule} {request}"
        );
    }
}
