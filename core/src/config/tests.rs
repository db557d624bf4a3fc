use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "PD_TOKEN" => Some("s3cr3t-value".to_string()),
        "BAD" => Some("a\r\nInjected: yes".to_string()),
        "NUL" => Some("a\0b".to_string()),
        _ => None,
    }
}

fn ok(json: &str) -> Plan {
    match parse(json.as_bytes(), &env) {
        Ok(p) => p,
        Err(e) => panic!("expected a valid config, got {e:?}"),
    }
}

fn errors(json: &str) -> Vec<String> {
    match parse(json.as_bytes(), &env) {
        Ok(_) => panic!("expected errors for {json}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn has(errs: &[String], needle: &str) -> bool {
    errs.iter().any(|e| e.contains(needle))
}

#[test]
fn defaults_are_documented_values() {
    let p = ok(r#"{"proxy":{"endpoints":{"/simple":"http://example.com/base"}}}"#);
    assert_eq!(p.gateway.prefix, "/api/proxy");
    assert_eq!(p.gateway.cluster_header, "x-backstage-proxy-cluster");
    assert_eq!(p.gateway.plugin_id, "proxy");
    assert_eq!(p.gateway.clock_skew_seconds, 0);
    assert_eq!(p.gateway.token_cache_size, 1024);
    assert_eq!(p.gateway.jwks_cache_seconds, 600);
    assert_eq!(p.gateway.jwks_refetch_cooldown_seconds, 30);
    assert_eq!(p.gateway.jwks_max_bytes, 64 * 1024);
    assert!(!p.disable_default_auth_policy);
    let e = &p.endpoints[0];
    assert_eq!(e.key, "/simple");
    assert_eq!(e.credentials, Credentials::Require);
    assert!(e.change_origin);
    assert!(!e.xfwd && !e.ws);
    assert!(e.path_rewrite.is_none());
    assert!(e.allowed_methods.is_none());
    assert_eq!(e.cluster, "http_example.com_80");
    assert_eq!(e.target.path, "/base");
}

#[test]
fn the_spec_example_loads() {
    let p = ok(r#"{
      "proxy": {
        "endpoints": {
          "/pagerduty": {
            "target": "https://api.pagerduty.com",
            "credentials": "require",
            "headers": { "Authorization": "Token token=${PD_TOKEN}" },
            "allowedMethods": ["GET"],
            "allowedHeaders": ["X-Request-Id"]
          },
          "/simple": "http://example.com/base"
        },
        "skipInvalidProxies": false
      },
      "backend": {
        "baseUrl": "http://backstage:7007",
        "auth": {
          "dangerouslyDisableDefaultAuthPolicy": false,
          "keys": [{ "secret": "c2VjcmV0LWtleS1ieXRlcw" }],
          "externalAccess": [
            { "type": "static", "options": { "token": "static-token-1", "subject": "ci" } },
            { "type": "legacy", "options": { "secret": "bGVnYWN5", "subject": "cron" } },
            { "type": "jwks", "options": { "url": "https://idp/.well-known/jwks.json", "issuer": "https://idp", "audience": "backstage" } }
          ]
        }
      },
      "gateway": { "prefix": "/api/proxy" }
    }"#);
    let pd = &p.endpoints[0];
    assert_eq!(
        pd.headers,
        vec![(
            "authorization".to_string(),
            "Token token=s3cr3t-value".to_string()
        )]
    );
    assert_eq!(pd.cluster, "https_api.pagerduty.com_443");
    assert!(
        pd.request_allow.contains("x-request-id") && pd.request_allow.contains("authorization")
    );
    assert!(
        pd.response_allow.contains("x-request-id") && !pd.response_allow.contains("authorization")
    );
    assert_eq!(p.auth.static_tokens.len(), 1);
    assert_eq!(p.auth.legacy.len(), 2);
    assert_eq!(p.auth.legacy[0].subject, "external:backstage-plugin");
    assert_eq!(p.auth.legacy[1].subject, "cron");
    assert_eq!(
        p.auth.jwks[0].issuers.as_deref(),
        Some(&["https://idp".to_string()][..])
    );
    assert_eq!(p.auth.jwks[0].cluster, "https_idp_443");
    let backend = p.backend.unwrap();
    assert_eq!(backend.cluster, "http_backstage_7007");
}

#[test]
fn unknown_policy_names_the_path_and_the_choices() {
    let e =
        errors(r#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","credentials":"maybe"}}}}"#);
    assert_eq!(
        e,
        vec!["proxy.endpoints./pd.credentials: unknown policy 'maybe'; expected one of require, forward, dangerously-allow-unauthenticated"]
    );
}

#[test]
fn a_typo_is_an_error_not_a_silent_allow_all() {
    let e =
        errors(r#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","allowedMethod":["GET"]}}}}"#);
    assert!(
        has(
            &e,
            "proxy.endpoints./pd.allowedMethod: unknown key 'allowedMethod'"
        ),
        "{e:?}"
    );
    let e = errors(r#"{"proxy":{"endpoints":{}},"gatway":{}}"#);
    assert!(has(&e, "gatway: unknown key"), "{e:?}");
    let e = errors(r#"{"proxy":{"endpoints":{}},"backend":{"auth":{"externalAcess":[]}}}"#);
    assert!(has(&e, "backend.auth.externalAcess: unknown key"), "{e:?}");
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let e = errors(
        r#"{"proxy":{"endpoints":{"/a":{"target":1},"/b":{"target":"http://t","changeOrigin":"yes"}}},"gateway":{"clockSkewSeconds":-1}}"#,
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(has(
        &e,
        r#"proxy.endpoints./a.target: Proxy target for route "/a" must be a string, but is of type number"#
    ));
    assert!(has(
        &e,
        "proxy.endpoints./b.changeOrigin: must be a boolean"
    ));
    assert!(has(&e, "gateway.clockSkewSeconds"));
}

#[test]
fn targets_must_be_urls() {
    let e = errors(r#"{"proxy":{"endpoints":{"/a":"backstage.io"}}}"#);
    assert!(
        has(&e, "proxy.endpoints./a: Proxy target is not a valid URL"),
        "{e:?}"
    );
    let e = errors(r#"{"proxy":{"endpoints":{"/a":{"target":"backstage.io"}}}}"#);
    assert!(
        has(
            &e,
            "proxy.endpoints./a.target: Proxy target is not a valid URL"
        ),
        "{e:?}"
    );
    let e = errors(r#"{"proxy":{"endpoints":{"/a":{"credentials":"require"}}}}"#);
    assert!(
        has(
            &e,
            r#"Proxy target for route "/a" must be a string, but is of type undefined"#
        ),
        "{e:?}"
    );
}

#[test]
fn skip_invalid_proxies_turns_endpoint_errors_into_warnings() {
    let p = ok(
        r#"{"proxy":{"skipInvalidProxies":true,"endpoints":{"/bad":{"credentials":"require"},"/good":"http://t"}}}"#,
    );
    assert_eq!(p.endpoints.len(), 1);
    assert_eq!(p.endpoints[0].key, "/good");
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("skipped configuring /bad due to")),
        "{:?}",
        p.warnings
    );
    // ... but not errors elsewhere
    let e = errors(
        r#"{"proxy":{"skipInvalidProxies":true,"endpoints":{}},"gateway":{"prefix":"nope"}}"#,
    );
    assert!(has(&e, "gateway.prefix"));
}

#[test]
fn legacy_root_form_is_accepted_with_a_deprecation_warning() {
    let p = ok(r#"{"proxy":{"/old":"http://t","skipInvalidProxies":false}}"#);
    assert_eq!(p.endpoints[0].key, "/old");
    assert!(p.warnings.iter().any(|w| w.contains("deprecated")));
    // With proxy.endpoints present, root-level keys are ignored (as Backstage does).
    let p = ok(r#"{"proxy":{"endpoints":{"/new":"http://t"},"/old":"http://t"}}"#);
    assert_eq!(p.endpoints.len(), 1);
    assert_eq!(p.endpoints[0].key, "/new");
    assert!(p.warnings.iter().any(|w| w.contains("ignored")));
    let e = errors(r#"{"proxy":{"notslash":"http://t"}}"#);
    assert!(has(&e, "proxy.notslash: unknown key"));
}

#[test]
fn keys_are_normalised_and_must_not_collide() {
    let p =
        ok(r#"{"proxy":{"endpoints":{"simple":"http://t","/trail/":"http://t","/":"http://t"}}}"#);
    let keys: Vec<&str> = p.endpoints.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["/simple", "/trail", ""]);
    let e = errors(r#"{"proxy":{"endpoints":{"/a":"http://t","/A/":"http://t"}}}"#);
    assert!(
        has(
            &e,
            "proxy.endpoints./A/: endpoint key matches the same paths as '/a'"
        ),
        "{e:?}"
    );
    let e = errors(r#"{"proxy":{"endpoints":{"/a?b":"http://t"}}}"#);
    assert!(has(&e, "proxy.endpoints./a?b"));
}

#[test]
fn env_interpolation() {
    assert_eq!(
        interpolate("Token ${PD_TOKEN}", &env).unwrap(),
        "Token s3cr3t-value"
    );
    assert_eq!(
        interpolate("$${PD_TOKEN} and $x", &env).unwrap(),
        "${PD_TOKEN} and $x"
    );
    assert_eq!(interpolate("${ PD_TOKEN }", &env).unwrap(), "s3cr3t-value");
    let e = errors(
        r#"{"proxy":{"endpoints":{"/a":{"target":"http://t","headers":{"X-Key":"${MISSING}"}}}}}"#,
    );
    assert_eq!(
        e,
        vec!["proxy.endpoints./a.headers.X-Key: environment variable 'MISSING' is not set"]
    );
    for var in ["BAD", "NUL"] {
        let e = errors(&format!(
            r#"{{"proxy":{{"endpoints":{{"/a":{{"target":"http://t","headers":{{"X-Key":"${{{var}}}"}}}}}}}}}}"#
        ));
        assert_eq!(e, vec![format!("proxy.endpoints./a.headers.X-Key: environment variable '{var}' contains CR, LF or NUL")]);
        assert!(!e[0].contains("Injected"));
    }
    let e = errors(
        r#"{"proxy":{"endpoints":{"/a":{"target":"http://t","headers":{"X-Key":"a\r\nb"}}}}}"#,
    );
    assert!(has(&e, "contains CR, LF or NUL"));
    assert_eq!(referenced_env_vars("a ${A} $${B} ${C}"), ["A", "C"]);
}

#[test]
fn injected_headers_are_validated() {
    let e = errors(
        r#"{"proxy":{"endpoints":{"/a":{"target":"http://t","headers":{"Bad Name":"x","Content-Length":"1","X":"1","x":"2"}}}}}"#,
    );
    assert!(has(&e, "headers.Bad Name: is not a valid header name"));
    assert!(has(&e, "headers.Content-Length: framing"));
    assert!(has(&e, "headers.x: header is configured twice"));
}

#[test]
fn static_tokens_rules() {
    let cfg = |opts: &str| {
        format!(
            r#"{{"proxy":{{"endpoints":{{}}}},"backend":{{"auth":{{"externalAccess":[{opts}]}}}}}}"#
        )
    };
    let e = errors(&cfg(
        r#"{"type":"static","options":{"token":"short7!","subject":"s"}}"#,
    ));
    assert_eq!(
        e,
        vec!["backend.auth.externalAccess[0].options.token: must be at least 8 characters long"]
    );
    let e = errors(&cfg(
        r#"{"type":"static","options":{"token":"has white space","subject":"s"}}"#,
    ));
    assert!(has(&e, "must not be empty or contain whitespace"));
    assert!(!e[0].contains("white space"), "the token is never echoed");
    let e = errors(&cfg(
        r#"{"type":"static","options":{"token":"12345678","subject":"a"}},{"type":"static","options":{"token":"12345678","subject":"b"}}"#,
    ));
    assert_eq!(e, vec!["backend.auth.externalAccess[1].options.token: the same static token is configured more than once"]);
    let e = errors(&cfg(r#"{"type":"static","options":{"token":"12345678"}}"#));
    assert!(has(&e, "options.subject: is required"));
    let e = errors(&cfg(
        r#"{"type":"static","options":{"token":"12345678","subject":"s","extra":1}}"#,
    ));
    assert!(has(&e, "options.extra: unknown key"));
    let e = errors(&cfg(r#"{"type":"magic","options":{}}"#));
    assert!(has(&e, "backend.auth.externalAccess[0].type: unknown type 'magic'; expected one of static, legacy, jwks"));
    // Backstage's docs once showed `config:` instead of `options:`
    let e = errors(&cfg(
        r#"{"type":"static","config":{"token":"12345678","subject":"s"}}"#,
    ));
    assert!(
        has(&e, "externalAccess[0].config: unknown key")
            && has(&e, "externalAccess[0].options: is required")
    );
}

#[test]
fn secrets_must_decode_and_are_never_echoed() {
    let cfg =
        |secret: &str| format!(r#"{{"backend":{{"auth":{{"keys":[{{"secret":"{secret}"}}]}}}}}}"#);
    assert_eq!(ok(&cfg("c2VjcmV0")).auth.legacy[0].key, b"secret");
    assert_eq!(ok(&cfg("c2VjcmV0==")).auth.legacy[0].key, b"secret");
    assert_eq!(
        ok(&cfg("-_-_")).auth.legacy[0].key,
        ok(&cfg("+/+/")).auth.legacy[0].key
    );
    for bad in ["", "not*base64", "=", "a"] {
        let e = errors(&cfg(bad));
        assert!(has(&e, "backend.auth.keys[0].secret"), "{bad}: {e:?}");
        if !bad.is_empty() {
            assert!(!e[0].contains(bad) || bad == "a" || bad == "=", "{e:?}");
        }
    }
}

#[test]
fn jwks_entries_accept_backstage_list_forms() {
    let p = ok(r#"{"backend":{"auth":{"externalAccess":[
        {"type":"jwks","options":{"url":"https://idp.example/jwks","issuer":["a","b c"],"audience":"x,y","algorithm":"ES256 RS256","subjectPrefix":"idp"}}
    ]}}}"#);
    let j = &p.auth.jwks[0];
    assert_eq!(j.issuers.as_deref().unwrap(), ["a", "b", "c"]);
    assert_eq!(j.audiences.as_deref().unwrap(), ["x", "y"]);
    assert_eq!(j.algorithms.as_deref().unwrap(), ["ES256", "RS256"]);
    assert_eq!(j.subject_prefix.as_deref(), Some("idp"));
    let e = errors(
        r#"{"backend":{"auth":{"externalAccess":[{"type":"jwks","options":{"url":"not a url"}}]}}}"#,
    );
    assert!(has(&e, "externalAccess[0].options.url: is not a valid URL"));
    let e = errors(
        r#"{"backend":{"auth":{"externalAccess":[{"type":"jwks","options":{"url":"https://i/","algorithm":["HS256"]}}]}}}"#,
    );
    assert!(has(&e, "unsupported algorithm 'HS256'"));
    let e = errors(r#"{"backend":{"auth":{"externalAccess":[{"type":"jwks","options":{}}]}}}"#);
    assert!(has(&e, "options.url: is required"));
}

#[test]
fn path_rewrite_keeps_key_order_and_reports_bad_patterns_by_endpoint() {
    let p = ok(
        r#"{"proxy":{"endpoints":{"/r":{"target":"http://t","pathRewrite":{"^/z":"/1","^/a":"/2","^/m":"/3"}}}}}"#,
    );
    let pats: Vec<&str> = p.endpoints[0]
        .path_rewrite
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.pattern.as_str())
        .collect();
    assert_eq!(pats, ["^/z", "^/a", "^/m"]);
    let e = errors(
        r#"{"proxy":{"endpoints":{"/r":{"target":"http://t","pathRewrite":{"^/(?=x)":"/"}}}}}"#,
    );
    assert!(has(&e, "proxy.endpoints./r.pathRewrite.^/(?=x): endpoint '/r': pathRewrite pattern cannot be compiled"), "{e:?}");
    let e = errors(
        r#"{"proxy":{"endpoints":{"/r":{"target":"http://t","pathRewrite":{"(a)\\1":"/"}}}}}"#,
    );
    assert!(has(&e, "cannot be compiled"));
    let e =
        errors(r#"{"proxy":{"endpoints":{"/r":{"target":"http://t","pathRewrite":{"^/x":1}}}}}"#);
    assert!(has(&e, "pathRewrite.^/x: must be a string"));
    let p = ok(r#"{"proxy":{"endpoints":{"/r":{"target":"http://t","pathRewrite":{}}}}}"#);
    assert!(p.endpoints[0].path_rewrite.as_ref().unwrap().is_empty());
}

#[test]
fn envoy_side_options_are_accepted_and_noted() {
    let p = ok(
        r#"{"proxy":{"endpoints":{"/a":{"target":"https://t","secure":false,"timeout":5000,"proxyTimeout":3000,"followRedirects":true,"cluster":"my_cluster"}}}}"#,
    );
    let e = &p.endpoints[0];
    assert_eq!(
        e.envoy,
        EnvoyOptions {
            secure: Some(false),
            timeout_ms: Some(5000),
            proxy_timeout_ms: Some(3000),
            follow_redirects: Some(true)
        }
    );
    assert_eq!(e.cluster, "my_cluster");
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("proxy.endpoints./a.secure: handled by Envoy")));
}

#[test]
fn gateway_section_is_validated() {
    let p = ok(
        r#"{"gateway":{"prefix":"/edge/","clusterHeader":"X-Route","backendUrl":"http://backstage.internal:7007","backendCluster":"bs","pluginId":"edge","clockSkewSeconds":5}}"#,
    );
    assert_eq!(p.gateway.prefix, "/edge");
    assert_eq!(p.prefix_lower, "/edge");
    assert_eq!(p.gateway.cluster_header, "x-route");
    assert_eq!(p.gateway.plugin_id, "edge");
    assert_eq!(p.gateway.clock_skew_seconds, 5);
    assert_eq!(p.backend.as_ref().unwrap().cluster, "bs");
    for bad in [
        r#"{"prefix":"api"}"#,
        r#"{"prefix":"/a?b"}"#,
        r#"{"prefix":"/"}"#,
        r#"{"pluginId":"Bad"}"#,
        r#"{"clusterHeader":"a b"}"#,
        r#"{"tokenCacheSize":"big"}"#,
    ] {
        let e = errors(&format!(r#"{{"gateway":{bad}}}"#));
        assert!(e.iter().all(|m| m.starts_with("gateway.")), "{bad}: {e:?}");
    }
}

#[test]
fn backend_server_keys_are_accepted_auth_typos_are_not() {
    ok(
        r#"{"backend":{"baseUrl":"http://b:7007","listen":{"port":7007},"cors":{"origin":"*"},"database":{"client":"better-sqlite3"}}}"#,
    );
    let e = errors(r#"{"backend":{"baseUrl":"nope"}}"#);
    assert!(has(&e, "backend.baseUrl: is not a valid URL"));
    let e = errors(r#"{"backend":{"auth":{"dangerouslyDisableDefaultAuthPolicy":"true"}}}"#);
    assert!(has(
        &e,
        "backend.auth.dangerouslyDisableDefaultAuthPolicy: must be a boolean"
    ));
}

#[test]
fn invalid_json_is_reported_without_echoing_input() {
    let e = errors(r#"{"backend":{"auth":{"keys":[{"secret":"TOPSECRET"}]}"#);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("configuration is not valid JSON"));
    assert!(!e[0].contains("TOPSECRET"));
    let e = errors("[]");
    assert_eq!(e, vec!["must be an object, but is of type array"]);
}

#[test]
fn ws_extends_both_allow_lists_with_the_handshake() {
    let p = ok(r#"{"proxy":{"endpoints":{"/ws":{"target":"http://t","ws":true}}}}"#);
    let e = &p.endpoints[0];
    assert!(e.request_allow.contains("upgrade") && e.request_allow.contains("sec-websocket-key"));
    assert!(e.response_allow.contains("sec-websocket-accept"));
}

#[test]
fn stat_names_are_stat_safe_and_distinct() {
    let p = parse(
        br#"{"proxy":{"endpoints":{"/":"http://r","/a.b":"http://x","/a_b":"http://y","/a/b":"http://z","/Pager-Duty":"http://p"}}}"#,
        &|_| None,
    )
    .unwrap();
    let mut names: Vec<(&str, &str)> = p
        .endpoints
        .iter()
        .map(|e| (e.raw_key.as_str(), e.stat_name.as_str()))
        .collect();
    names.sort();
    // `.` and `/` would split the stat name; collisions get a suffix.
    assert_eq!(names[0], ("/", "root"));
    assert_eq!(names[1], ("/Pager-Duty", "Pager-Duty"));
    let abc: std::collections::BTreeSet<&str> = names[2..].iter().map(|(_, n)| *n).collect();
    assert_eq!(abc.len(), 3, "{names:?}");
    assert!(abc.iter().all(|n| n.starts_with("a_b")), "{names:?}");
}

#[test]
fn the_service_is_validated_with_json_paths() {
    let base = r#"{"proxy":{"endpoints":{"/pd":"https://api.pagerduty.com"}},"gateway":"#;
    let ok = format!(
        r#"{base}{{"rateLimitService":{{"url":"http://rl.ratelimit.svc:8081"}},"rateLimits":{{"/pd":{{"perPrincipal":{{"requests":5,"seconds":3600}}}}}}}}}}"#
    );
    let p = crate::config::parse(ok.as_bytes(), &|_| None).unwrap();
    let s = p.gateway.rate_limit_service.unwrap();
    assert_eq!(
        (s.domain.as_str(), s.timeout_ms, s.failure_mode_deny),
        ("backstage_proxy", 20, false)
    );
    assert_eq!(s.cluster, "http_rl.ratelimit.svc_8081");
    for (gateway, path) in [
        (r#"{"rateLimitService":{}}"#, "gateway.rateLimitService.url"),
        (
            r#"{"rateLimitService":{"url":"grpc://rl:8081"}}"#,
            "gateway.rateLimitService.url",
        ),
        (
            r#"{"rateLimitService":{"url":"http://rl:8081/v3"}}"#,
            "gateway.rateLimitService.url",
        ),
        (
            r#"{"rateLimitService":{"url":"http://rl:8081","domain":"a b"}}"#,
            "gateway.rateLimitService.domain",
        ),
        (
            r#"{"rateLimitService":{"url":"http://rl:8081","timeoutMs":0}}"#,
            "gateway.rateLimitService.timeoutMs",
        ),
        (
            r#"{"rateLimitService":{"url":"http://rl:8081","failureModeDeny":"yes"}}"#,
            "gateway.rateLimitService.failureModeDeny",
        ),
        (
            r#"{"rateLimitService":{"url":"http://rl:8081","redis":"x"}}"#,
            "gateway.rateLimitService.redis",
        ),
        (
            r#"{"rateLimitService":"http://rl:8081"}"#,
            "gateway.rateLimitService",
        ),
        // The service counts in whole units: a 2-minute window is not one.
        (
            r#"{"rateLimitService":{"url":"http://rl:8081"},"rateLimits":{"/pd":{"total":{"requests":5,"seconds":120}}}}"#,
            "gateway.rateLimits./pd.total.seconds",
        ),
    ] {
        let json = format!("{base}{gateway}}}");
        let errs = crate::config::parse(json.as_bytes(), &|_| None).unwrap_err();
        assert!(errs.iter().any(|e| e.path == path), "{gateway}: {errs:?}");
    }
    // A service without budgets is never asked: a warning, as `check`
    // prints it.
    let idle = format!(r#"{base}{{"rateLimitService":{{"url":"http://rl:8081"}}}}}}"#);
    let p = crate::config::parse(idle.as_bytes(), &|_| None).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("never asked")),
        "{:?}",
        p.warnings
    );
    // The same window is fine for the filter's own counters.
    let local =
        format!(r#"{base}{{"rateLimits":{{"/pd":{{"total":{{"requests":5,"seconds":120}}}}}}}}}}"#);
    assert!(crate::config::parse(local.as_bytes(), &|_| None).is_ok());
}

mod restrictions;
mod secrets;
