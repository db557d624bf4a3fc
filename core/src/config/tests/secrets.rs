//! Secrets in the configuration (`docs/tokens.md#secrets-in-the-configuration`):
//! a static token by its digest, `${VAR}` from the VM's environment in
//! tokens, legacy secrets and `auth`, and no error that echoes a value.

use super::*;
use hmac_sha256::Hash as Sha256;

const TOKEN: &str = "ci-token-0123456789";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_of(token: &str) -> String {
    format!("sha256:{}", hex(&Sha256::hash(token.as_bytes())))
}

fn external(entries: &str) -> String {
    format!(
        r#"{{"proxy":{{"endpoints":{{}}}},"backend":{{"auth":{{"externalAccess":[{entries}]}}}}}}"#
    )
}

fn static_entry(options: &str) -> String {
    external(&format!(
        r#"{{"type":"static","options":{{{options},"subject":"ci"}}}}"#
    ))
}

/// The digest a configuration carries for every spelling that names the
/// same token: the token itself, `${VAR}`, `tokenDigest` in either case.
#[test]
fn a_static_token_is_known_by_its_digest_however_it_is_given() {
    let env = |name: &str| (name == "CI_TOKEN").then(|| TOKEN.to_string());
    let want = Sha256::hash(TOKEN.as_bytes());
    let spellings = [
        format!(r#""token":"{TOKEN}""#),
        r#""token":"${CI_TOKEN}""#.to_string(),
        r#""token":"${ CI_TOKEN }""#.to_string(),
        format!(r#""tokenDigest":"{}""#, digest_of(TOKEN)),
        format!(
            r#""tokenDigest":"{}""#,
            digest_of(TOKEN).to_uppercase().replace("SHA256", "sha256")
        ),
    ];
    for options in spellings {
        let plan = parse(static_entry(&options).as_bytes(), &env)
            .unwrap_or_else(|e| panic!("{options}: {e:?}"));
        assert_eq!(plan.auth.static_tokens.len(), 1, "{options}");
        assert_eq!(plan.auth.static_tokens[0].digest, want, "{options}");
    }
}

#[test]
fn a_token_and_its_digest_are_the_same_token_twice() {
    let both = external(&format!(
        r#"{{"type":"static","options":{{"token":"{TOKEN}","subject":"a"}}}},
           {{"type":"static","options":{{"tokenDigest":"{}","subject":"b"}}}}"#,
        digest_of(TOKEN)
    ));
    assert_eq!(
        errors(&both),
        vec!["backend.auth.externalAccess[1].options.token: the same static token is configured more than once"]
    );
}

#[test]
fn a_malformed_digest_or_two_spellings_at_once_are_refused() {
    let good = digest_of(TOKEN);
    let hexpart = good.trim_start_matches("sha256:");
    let bad = [
        hexpart.to_string(),                  // no algorithm
        format!("sha512:{hexpart}"),          // another algorithm
        format!("sha256:{}", &hexpart[1..]),  // 63 digits
        format!("sha256:{hexpart}0"),         // 65 digits
        format!("sha256:{}g", &hexpart[1..]), // not hex
        format!("sha256: {}", &hexpart[1..]), // whitespace
        format!("SHA256:{hexpart}"),          // the prefix is exact
        String::new(),
    ];
    for d in bad {
        let e = errors(&static_entry(&format!(r#""tokenDigest":"{d}""#)));
        assert_eq!(
            e,
            vec!["backend.auth.externalAccess[0].options.tokenDigest: must be 'sha256:' followed by 64 hexadecimal digits"],
            "{d:?}"
        );
    }
    let e = errors(&static_entry(r#""tokenDigest":42"#));
    assert!(has(&e, "options.tokenDigest: must be 'sha256:'"), "{e:?}");
    let e = errors(&static_entry(&format!(
        r#""token":"{TOKEN}","tokenDigest":"{good}""#
    )));
    assert_eq!(
        e,
        vec!["backend.auth.externalAccess[0].options: has both token and tokenDigest; give one of them"]
    );
    let e = errors(&external(r#"{"type":"static","options":{"subject":"ci"}}"#));
    assert!(has(&e, "options.token: is required"), "{e:?}");
}

/// An unset variable in a secret is a load error that names the variable;
/// a value from the environment is checked as a written one is, and no
/// error quotes it.
#[test]
fn secrets_from_the_environment_are_checked_and_never_echoed() {
    let secret_env = |name: &str| match name {
        "SHORT" => Some("sh0rt".to_string()),
        "SPACED" => Some("has a space".to_string()),
        "NOT_B64" => Some("***not*base64***".to_string()),
        "LEGACY" => Some("bGVnYWN5LXNlY3JldC1ieXRlcw".to_string()),
        _ => None,
    };
    let cases = [
        (
            static_entry(r#""token":"${MISSING}""#),
            "options.token: environment variable 'MISSING' is not set",
        ),
        (
            static_entry(r#""token":"${SHORT}""#),
            "options.token: must be at least 8 characters long",
        ),
        (
            static_entry(r#""token":"${SPACED}""#),
            "options.token: must not be empty or contain whitespace",
        ),
        (
            external(r#"{"type":"legacy","options":{"secret":"${NOT_B64}","subject":"x"}}"#),
            "options.secret: must be base64",
        ),
        (
            external(r#"{"type":"legacy","options":{"secret":"${MISSING}","subject":"x"}}"#),
            "options.secret: environment variable 'MISSING' is not set",
        ),
        (
            r#"{"backend":{"auth":{"keys":[{"secret":"${MISSING}"}]}}}"#.to_string(),
            "backend.auth.keys[0].secret: environment variable 'MISSING' is not set",
        ),
    ];
    for (cfg, want) in cases {
        let e = match parse(cfg.as_bytes(), &secret_env) {
            Ok(_) => panic!("expected an error for {cfg}"),
            Err(e) => e.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(has(&e, want), "{cfg}: {e:?}");
        for value in ["sh0rt", "has a space", "***not*base64***"] {
            assert!(!e.iter().any(|m| m.contains(value)), "{e:?} echoes {value}");
        }
    }
    let legacy = external(r#"{"type":"legacy","options":{"secret":"${LEGACY}","subject":"x"}}"#);
    let plan = parse(legacy.as_bytes(), &secret_env).unwrap();
    assert_eq!(plan.auth.legacy[0].key, b"legacy-secret-bytes");
}

/// `auth` (http-proxy's basic-auth option) becomes the `Basic` value Node
/// would send; `${VAR}` is read from the VM's environment.
#[test]
fn auth_becomes_nodes_basic_credentials() {
    let env = |name: &str| match name {
        "SONARQUBE_TOKEN" => Some("squ_abc".to_string()),
        "BAD" => Some("a\r\nX-Injected: 1".to_string()),
        _ => None,
    };
    let endpoint = |auth: &str| {
        format!(
            r#"{{"proxy":{{"endpoints":{{"/sonarqube":{{"target":"https://sonar.example","auth":{auth}}}}}}}}}"#
        )
    };
    let plan = parse(endpoint(r#""${SONARQUBE_TOKEN}:""#).as_bytes(), &env).unwrap();
    // Buffer.from('squ_abc:').toString('base64')
    assert_eq!(
        plan.endpoints[0].basic_auth.as_deref(),
        Some("Basic c3F1X2FiYzo=")
    );
    let plan = parse(endpoint(r#""""#).as_bytes(), &env).unwrap();
    assert_eq!(
        plan.endpoints[0].basic_auth, None,
        "an empty auth sends nothing, as in Node"
    );
    for (auth, want) in [
        (
            r#""${UNSET}:""#,
            "proxy.endpoints./sonarqube.auth: environment variable 'UNSET' is not set",
        ),
        (
            r#""${BAD}""#,
            "proxy.endpoints./sonarqube.auth: environment variable 'BAD' contains CR, LF or NUL",
        ),
        (
            r#""user:pa\r\nss""#,
            "proxy.endpoints./sonarqube.auth: value contains CR, LF or NUL",
        ),
        (
            r#"{"user":"x"}"#,
            "proxy.endpoints./sonarqube.auth: must be a string, but is of type object",
        ),
    ] {
        let e = match parse(endpoint(auth).as_bytes(), &env) {
            Ok(_) => panic!("expected an error for {auth}"),
            Err(e) => e.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert_eq!(e, vec![want.to_string()], "{auth}");
    }
}
