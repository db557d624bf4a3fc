//! `docs/security.md#c-jwt-validation` group C (JWT validation), case by case, at the
//! layer that decides them: the core, with tokens minted independently.
//! Cases that need Envoy (C32's 431) or concern configuration (C35's secret
//! length) are noted where Backstage parity decides differently.

use crate::auth::jwks::set::parse_key_set;
use crate::auth::{authenticate, AuthState, Outcome};
use crate::config::{parse, Plan};
use crate::identity::Principal;
use crate::permission::Standing;
use crate::reply::Reason;
use backstage_proxy_mint::*;

const NOW: u64 = 1_800_000_000;
const AUTH_URL: &str = "http://backstage:7007/api/auth/.well-known/jwks.json";
const P1_URL: &str = "https://p1.example/jwks";
const P2_URL: &str = "https://p2.example/jwks";

fn plan(skew: u64) -> Plan {
    let cfg = format!(
        r#"{{"backend":{{"baseUrl":"http://backstage:7007","auth":{{"externalAccess":[
        {{"type":"jwks","options":{{"url":"{P1_URL}","issuer":"https://p1.example","audience":"edge"}}}},
        {{"type":"jwks","options":{{"url":"{P2_URL}","issuer":"https://p2.example","audience":"edge","algorithm":"ES256"}}}}
    ]}}}},"gateway":{{"clockSkewSeconds":{skew}}}}}"#
    );
    parse(cfg.as_bytes(), &|_| None).unwrap()
}

struct Env {
    plan: Plan,
    state: AuthState,
    sets: Vec<(&'static str, String)>,
    fetches: Vec<String>,
}

impl Env {
    fn new(skew: u64, sets: Vec<(&'static str, String)>) -> Env {
        let plan = plan(skew);
        let state = AuthState::new(&plan);
        Env {
            plan,
            state,
            sets,
            fetches: Vec::new(),
        }
    }

    fn run(&mut self, token: &str) -> Outcome {
        for _ in 0..4 {
            match authenticate(&self.plan, &mut self.state, token, NOW * 1000) {
                Outcome::Pending(src) => {
                    self.fetches.push(src.url.clone());
                    self.state.keys.start(&src.url, NOW * 1000);
                    match self
                        .sets
                        .iter()
                        .find(|(u, _)| *u == src.url)
                        .map(|(_, b)| parse_key_set(b.as_bytes()))
                    {
                        Some(Ok(set)) => self.state.keys.succeeded(&src.url, set, NOW * 1000),
                        _ => self.state.keys.failed(&src.url, NOW * 1000),
                    }
                }
                other => return other,
            }
        }
        panic!("pending forever");
    }

    fn accepts(&mut self, token: &str) -> bool {
        matches!(self.run(token), Outcome::Authenticated(..))
    }
}

fn user_env(keys: &[&dyn Key]) -> Env {
    Env::new(0, vec![(AUTH_URL, key_set(keys))])
}

fn user_payload(exp: u64) -> String {
    format!(r#"{{"sub":"user:default/u","iat":{NOW},"exp":{exp}}}"#)
}

/// A token with these raw parts (header and payload JSON, signature bytes).
fn raw(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes()),
        b64url(sig)
    )
}

fn user_header(alg: &str, kid: &str) -> String {
    format!(r#"{{"typ":"vnd.backstage.user","alg":"{alg}","kid":"{kid}"}}"#)
}

#[test]
fn c01_alg_none_in_every_spelling() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    for header in [
        r#"{"typ":"vnd.backstage.user","alg":"none","kid":"k"}"#,
        r#"{"typ":"vnd.backstage.user","alg":"None","kid":"k"}"#,
        r#"{"typ":"vnd.backstage.user","alg":"NONE","kid":"k"}"#,
        r#"{"typ":"vnd.backstage.user","alg":"","kid":"k"}"#,
        r#"{"typ":"vnd.backstage.user","kid":"k"}"#,
    ] {
        for sig in [&b""[..], b"anything"] {
            assert!(
                !env.accepts(&raw(header, &user_payload(NOW + 60), sig)),
                "{header}"
            );
        }
    }
}

#[test]
fn c02_c03_c04_hmac_with_public_key_material_is_refused() {
    let es = Es256::new(1, "k");
    let rs = Rsa::test_key("r");
    let mut env = user_env(&[&es, &rs]);
    let jwk_es = es.jwk();
    let jwk_rs = rs.jwk();
    for secret in [
        jwk_es["x"].as_str().unwrap().as_bytes().to_vec(),
        jwk_rs["n"].as_str().unwrap().as_bytes().to_vec(),
        crate::base64::decode_jws(jwk_rs["n"].as_str().unwrap()).unwrap(),
        Vec::new(),
    ] {
        for kid in ["k", "r"] {
            let t = hs256_raw(&user_header("HS256", kid), &user_payload(NOW + 60), &secret);
            assert!(!env.accepts(&t));
        }
    }
}

#[test]
fn c05_c06_c07_algorithm_must_match_key_type_and_key_alg() {
    let es = Es256::new(1, "ec");
    let rs = Rsa::test_key("rsa");
    let mut env = user_env(&[&es, &rs]);
    // ES256 header naming the RSA key, signed by the EC key; and the reverse
    assert!(!env.accepts(&jws(
        &es,
        &user_header("ES256", "rsa"),
        &user_payload(NOW + 60)
    )));
    assert!(!env.accepts(&jws(
        &rs,
        &user_header("RS256", "ec"),
        &user_payload(NOW + 60)
    )));
    // JWK says ES384, token says ES256
    let mut doc: serde_json::Value = serde_json::from_str(&key_set(&[&es])).unwrap();
    doc["keys"][0]["alg"] = "ES384".into();
    let mut env2 = Env::new(0, vec![(AUTH_URL, doc.to_string())]);
    assert!(!env2.accepts(&jws(
        &es,
        &user_header("ES256", "ec"),
        &user_payload(NOW + 60)
    )));
    // PS256 signature under an RSA JWK that says RS256
    let ps = Rsa::from_pem(backstage_proxy_mint::RSA2048_PEM, "rsa", true);
    assert!(!env.accepts(&jws(
        &ps,
        &user_header("PS256", "rsa"),
        &user_payload(NOW + 60)
    )));
    // case or space variants of a valid alg
    for alg in ["es256", "ES256 "] {
        assert!(
            !env.accepts(&jws(&es, &user_header(alg, "ec"), &user_payload(NOW + 60))),
            "{alg}"
        );
    }
    // sanity: the genuine token is accepted
    assert!(env.accepts(&jws(
        &es,
        &user_header("ES256", "ec"),
        &user_payload(NOW + 60)
    )));
}

#[test]
fn c08_embedded_keys_and_key_urls_are_ignored() {
    let es = Es256::new(1, "k");
    let attacker = Es256::new(9, "k");
    let mut env = user_env(&[&es]);
    let header = format!(
        r#"{{"typ":"vnd.backstage.user","alg":"ES256","kid":"k","jwk":{},"jku":"http://127.0.0.1:1/evil","x5u":"http://127.0.0.1:1/x"}}"#,
        attacker.jwk()
    );
    assert!(!env.accepts(&jws(&attacker, &header, &user_payload(NOW + 60))));
    assert_eq!(
        env.fetches,
        [AUTH_URL],
        "only the configured key set is ever fetched"
    );
}

#[test]
fn c09_hostile_kids() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    assert!(env.accepts(&jws(
        &es,
        &user_header("ES256", "k"),
        &user_payload(NOW + 60)
    )));
    let before = env.fetches.len();
    for header in [
        r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":123}"#.to_string(),
        r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":{}}"#.to_string(),
    ] {
        assert!(!env.accepts(&jws(&es, &header, &user_payload(NOW + 60))));
    }
    assert_eq!(env.fetches.len(), before, "no refetch for a non-string kid");
    for kid in [
        "../../../../dev/null".to_string(),
        "' OR 1=1--".to_string(),
        "k".repeat(10 * 1024),
    ] {
        assert!(!env.accepts(&jws(
            &es,
            &user_header("ES256", &kid),
            &user_payload(NOW + 60)
        )));
    }
    assert!(
        env.fetches.len() <= before + 1,
        "at most one rate-limited refetch"
    );
}

#[test]
fn c10_no_kid_tries_the_compatible_keys() {
    let a = Es256::new(1, "a");
    let b = Es256::new(2, "b");
    let mut env = user_env(&[&a, &b]);
    let header = r#"{"typ":"vnd.backstage.user","alg":"ES256"}"#;
    assert!(env.accepts(&jws(&b, header, &user_payload(NOW + 60))));
    assert!(env.accepts(&jws(&a, header, &user_payload(NOW + 61))));
    assert!(!env.accepts(&jws(&Es256::new(3, "c"), header, &user_payload(NOW + 62))));
}

#[test]
fn c11_c12_exp_and_nbf_boundaries_with_and_without_skew() {
    let es = Es256::new(1, "k");
    let tok = |exp: u64, nbf: Option<u64>| {
        let nbf = nbf.map(|n| format!(r#","nbf":{n}"#)).unwrap_or_default();
        jws(
            &es,
            &user_header("ES256", "k"),
            &format!(r#"{{"sub":"u","iat":{NOW},"exp":{exp}{nbf}}}"#),
        )
    };
    let mut env = user_env(&[&es]);
    assert!(
        !env.accepts(&tok(NOW, None)),
        "exp = now is expired at skew 0"
    );
    assert!(env.accepts(&tok(NOW + 1, None)));
    assert!(!env.accepts(&tok(NOW + 60, Some(NOW + 1))));
    assert!(env.accepts(&tok(NOW + 60, Some(NOW))));
    let mut skewed = Env::new(30, vec![(AUTH_URL, key_set(&[&es]))]);
    assert!(skewed.accepts(&tok(NOW - 30 + 1, None)));
    assert!(!skewed.accepts(&tok(NOW - 30 - 1, None)));
    assert!(skewed.accepts(&tok(NOW + 60, Some(NOW + 30))));
    assert!(!skewed.accepts(&tok(NOW + 60, Some(NOW + 31))));
}

#[test]
fn c13_c14_c15_claim_types() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    let with = |claims: &str| {
        jws(
            &es,
            &user_header("ES256", "k"),
            &format!(r#"{{"sub":"u",{claims}}}"#),
        )
    };
    assert!(
        env.accepts(&with(&format!(
            r#""iat":{},"exp":{}"#,
            NOW + 3600,
            NOW + 60
        ))),
        "future iat: parity"
    );
    for claims in [
        format!(r#""iat":"x","exp":{}"#, NOW + 60),
        format!(r#""iat":{NOW},"exp":"9999999999""#),
        format!(r#""iat":{NOW},"exp":null"#),
        format!(r#""iat":{NOW},"exp":true"#),
        format!(r#""iat":{NOW},"exp":[1]"#),
        format!(r#""iat":{NOW},"exp":{},"nbf":"0""#, NOW + 60),
        format!(r#""iat":{NOW},"exp":-1"#),
        format!(r#""iat":{NOW},"exp":1.5"#),
    ] {
        assert!(!env.accepts(&with(&claims)), "{claims}");
    }
    // absurd values never panic
    for claims in [
        format!(r#""iat":{NOW},"exp":1e300"#),
        format!(r#""iat":{NOW},"exp":18446744073709551616"#),
    ] {
        let _ = env.run(&with(&claims));
    }
}

#[test]
fn c16_missing_exp_is_refused_for_user_tokens() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    assert!(!env.accepts(&jws(
        &es,
        &user_header("ES256", "k"),
        &format!(r#"{{"sub":"u","iat":{NOW}}}"#)
    )));
}

#[test]
fn c17_c18_c19_issuer_audience_subject_of_external_entries() {
    let k = Es256::new(4, "p1");
    let mut env = Env::new(0, vec![(P1_URL, key_set(&[&k]))]);
    let t = |iss: &str, aud: &str, sub: &str| {
        jws(
            &k,
            r#"{"alg":"ES256","kid":"p1"}"#,
            &format!(
                r#"{{"iss":{iss},"aud":{aud},"sub":{sub},"exp":{}}}"#,
                NOW + 60
            ),
        )
    };
    assert!(env.accepts(&t(r#""https://p1.example""#, r#""edge""#, r#""robot""#)));
    assert!(env.accepts(&t(
        r#""https://p1.example""#,
        r#"["x","edge"]"#,
        r#""robot""#
    )));
    for (iss, aud, sub) in [
        (r#""HTTPS://p1.example""#, r#""edge""#, r#""robot""#),
        (r#""https://p1.example/""#, r#""edge""#, r#""robot""#),
        ("null", r#""edge""#, r#""robot""#),
        (r#""https://p1.example""#, "[]", r#""robot""#),
        (r#""https://p1.example""#, r#""Edge""#, r#""robot""#),
        (r#""https://p1.example""#, "null", r#""robot""#),
        (r#""https://p1.example""#, r#""edge""#, "5"),
        (r#""https://p1.example""#, r#""edge""#, r#""""#),
        (r#""https://p1.example""#, r#""edge""#, "null"),
    ] {
        let o = env.run(&t(iss, aud, sub));
        assert!(
            matches!(&o, Outcome::Denied(d) if d.status == 401),
            "{iss} {aud} {sub}: {o:?}"
        );
    }
}

#[test]
fn c20_c26_c30_c31_malformed_tokens() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    let good = jws(&es, &user_header("ES256", "k"), &user_payload(NOW + 60));
    assert!(env.accepts(&good));
    let (hp, s) = good.rsplit_once('.').unwrap();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for bad in [
        format!("{hp}."),
        hp.to_string(),
        format!("{good}."),
        format!("{good}.x"),
        format!(".{}", good.split_once('.').unwrap().1),
        String::new(),
        format!("{hp}.{s}="),
        good.replace('-', "+"),
        format!("{hp}.{}\n", s),
        format!(
            "{}.{}.{}",
            b64url(b"[1]"),
            b64url(user_payload(NOW + 60).as_bytes()),
            s
        ),
        format!(
            "{}.{}.{}",
            b64url(b"\"x\""),
            b64url(user_payload(NOW + 60).as_bytes()),
            s
        ),
        format!(
            "{}.{}.{}",
            b64url("\u{feff}{\"alg\":\"ES256\"}".as_bytes()),
            b64url(user_payload(NOW + 60).as_bytes()),
            s
        ),
        format!(
            "{}.{}.{}",
            b64url(&user_header("ES256", "k").into_bytes()),
            b64url(b"\xff\xfe"),
            s
        ),
        format!(
            "{}.{}.{}",
            b64url(&user_header("ES256", "k").into_bytes()),
            b64url(deep.as_bytes()),
            s
        ),
        format!("{good}.{}.{}", b64url(b"iv"), b64url(b"tag")),
        format!(
            r#"{{"payload":"{}","signatures":[]}}"#,
            b64url(user_payload(NOW + 60).as_bytes())
        ),
    ] {
        assert!(!env.accepts(&bad), "{bad:.80}");
    }
}

#[test]
fn c21_c22_ecdsa_signature_encodings() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    let good = jws(&es, &user_header("ES256", "k"), &user_payload(NOW + 60));
    let (hp, s) = good.rsplit_once('.').unwrap();
    let sig = crate::base64::decode_jws(s).unwrap();
    // n, the P-256 group order
    let n: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut rn_sn = n.to_vec();
    rn_sn.extend_from_slice(&n);
    let der = {
        let (r, s) = sig.split_at(32);
        let mut v = vec![0x30, 68, 0x02, 32];
        v.extend_from_slice(r);
        v.extend_from_slice(&[0x02, 32]);
        v.extend_from_slice(s);
        v
    };
    for bad in [
        vec![0u8; 64],
        rn_sn,
        sig[..63].to_vec(),
        [sig.clone(), vec![0]].concat(),
        der,
    ] {
        assert!(!env.accepts(&format!("{hp}.{}", b64url(&bad))));
    }
    // high-S (n - s) is a valid JWS signature; it names the same principal
    let (r, s_bytes) = sig.split_at(32);
    let mut high = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(n[i]) - i16::from(s_bytes[i]) - borrow;
        high[i] = (d.rem_euclid(256)) as u8;
        borrow = i16::from(d < 0);
    }
    let malleated = format!("{hp}.{}", b64url(&[r, &high[..]].concat()));
    // jose on Node's OpenSSL accepts high-S ECDSA signatures, and so does
    // the filter: same principal, and cached under its own token string.
    match env.run(&malleated) {
        Outcome::Authenticated(p, ..) => assert_eq!(p, Principal::User("user:default/u".into())),
        other => panic!("a high-S signature is valid for jose: {other:?}"),
    }
}

#[test]
fn c23_ed25519_encodings() {
    let ed = Ed::new(2, "e");
    let mut env = user_env(&[&ed]);
    let good = jws(&ed, &user_header("EdDSA", "e"), &user_payload(NOW + 60));
    assert!(env.accepts(&good));
    let (hp, s) = good.rsplit_once('.').unwrap();
    let mut sig = crate::base64::decode_jws(s).unwrap();
    assert!(!env.accepts(&format!("{hp}.{}", b64url(&sig[..63]))));
    sig[63] |= 0xf0; // S >= L
    assert!(!env.accepts(&format!("{hp}.{}", b64url(&sig))));
    let x25519 = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"X25519","x":"{}","kid":"e"}}]}}"#,
        ed.jwk()["x"].as_str().unwrap()
    );
    assert!(parse_key_set(x25519.as_bytes()).is_err());
}

#[test]
fn c27_duplicate_names_never_bypass_the_signature() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    let dup_alg = r#"{"typ":"vnd.backstage.user","alg":"ES256","alg":"none","kid":"k"}"#;
    assert!(!env.accepts(&jws(&es, dup_alg, &user_payload(NOW + 60))));
    assert!(!env.accepts(&raw(dup_alg, &user_payload(NOW + 60), b"")));
    let dup_exp = format!(
        r#"{{"sub":"u","iat":{NOW},"exp":{},"exp":{}}}"#,
        NOW - 10,
        NOW + 60
    );
    assert!(!env.accepts(&jws(&es, &user_header("ES256", "k"), &dup_exp)));
}

#[test]
fn c28_identity_is_the_subject_only() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    let t = jws(
        &es,
        &user_header("ES256", "k"),
        &format!(
            r#"{{"sub":"user:default/u","email":"admin@example.com","email_verified":false,"iat":{NOW},"exp":{}}}"#,
            NOW + 60
        ),
    );
    assert_eq!(
        env.run(&t),
        Outcome::Authenticated(
            Principal::User("user:default/u".into()),
            None,
            Standing::User
        ),
        "a token without ent owns nothing"
    );
}

#[test]
fn c29_crit_and_b64_are_refused() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    for header in [
        r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"k","crit":["exp"]}"#,
        r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"k","crit":["foo"],"foo":1}"#,
        r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"k","b64":false,"crit":["b64"]}"#,
    ] {
        assert!(
            !env.accepts(&jws(&es, header, &user_payload(NOW + 60))),
            "{header}"
        );
    }
}

#[test]
fn c33_escaped_alg_is_the_same_alg() {
    let es = Es256::new(1, "k");
    let mut env = user_env(&[&es]);
    let header = r#"{"typ":"vnd.backstage.user","alg":"\u0045S256","kid":"k"}"#;
    assert!(env.accepts(&jws(&es, header, &user_payload(NOW + 60))));
}

#[test]
fn c36_providers_never_share_keys_even_with_the_same_kid() {
    let p1 = Es256::new(4, "same");
    let p2 = Es256::new(5, "same");
    let mut env = Env::new(
        0,
        vec![(P1_URL, key_set(&[&p1])), (P2_URL, key_set(&[&p2]))],
    );
    let t = |key: &Es256, iss: &str| {
        jws(
            key,
            r#"{"alg":"ES256","kid":"same"}"#,
            &format!(
                r#"{{"iss":"{iss}","aud":"edge","sub":"s","exp":{}}}"#,
                NOW + 60
            ),
        )
    };
    assert!(env.accepts(&t(&p1, "https://p1.example")));
    assert!(env.accepts(&t(&p2, "https://p2.example")));
    assert!(
        !env.accepts(&t(&p2, "https://p1.example")),
        "P2's key never verifies a P1 token"
    );
    assert!(!env.accepts(&t(&p1, "https://p2.example")));
    let o = env.run(&t(&p2, "https://p1.example"));
    assert!(
        matches!(o, Outcome::Denied(ref d) if d.reason == Reason::IllegalToken),
        "{o:?}"
    );
}
