//! The monitoring files (`docs/operations.md#dashboard-and-alerts`) as
//! Prometheus and Grafana load them: the alert rules pass `promtool check
//! rules` and each fires in `promtool test rules` on the series that
//! should fire it; the dashboard is Grafana's dashboard model and each of
//! its queries is PromQL that promtool accepts. And the labels that make
//! them work: the rendered `stats_config` is the shipped envoy.yaml's, and
//! every cluster name with a dot gets a stats name without one. (That the
//! metrics and labels the queries read exist in a running gateway:
//! tests/e2e_metrics.rs.)

use std::collections::BTreeSet;

use backstage_proxy_testkit::monitoring::*;
use backstage_proxy_testkit::{repo_root, TempDir};
use backstage_proxy_wasm_cli::render;
use backstage_proxy_wasm_cli::stats_tags::{self, TAGS};
use serde_json::Value;

#[test]
fn alert_rules_pass_promtool_check() {
    let (ok, out) = promtool(
        &["check", "rules", "alerts.yaml"],
        &repo_root().join("deploy/prometheus"),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", alert_exprs().len())),
        "{out}"
    );
}

#[test]
fn every_alert_fires_in_its_promtool_unit_test() {
    let dir = repo_root().join("deploy/prometheus");
    let (ok, out) = promtool(&["test", "rules", "alerts_test.yaml"], &dir);
    assert!(ok, "{out}");
    // Each alert has a case in which it fires (exp_alerts after its name).
    let tests = std::fs::read_to_string(dir.join("alerts_test.yaml")).unwrap();
    let v: Value = serde_saphyr::from_str(&tests).unwrap();
    let fired: BTreeSet<&str> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .filter(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|c| c["alertname"].as_str().unwrap())
        .collect();
    for (name, _) in alert_exprs() {
        assert!(fired.contains(name.as_str()), "no unit test fires {name}");
    }
}

#[test]
fn promtool_unit_tests_can_fail() {
    // The same tests against rules that never fire: promtool must refuse.
    let tmp = TempDir::new("alerts");
    let never = std::fs::read_to_string(alerts_path())
        .unwrap()
        .replace("    expr: ", "    expr: vector(0) > 1 and ");
    std::fs::write(tmp.0.join("alerts.yaml"), never).unwrap();
    std::fs::copy(
        repo_root().join("deploy/prometheus/alerts_test.yaml"),
        tmp.0.join("alerts_test.yaml"),
    )
    .unwrap();
    let (ok, out) = promtool(&["test", "rules", "alerts_test.yaml"], &tmp.0);
    assert!(!ok, "{out}");
}

#[test]
fn dashboard_is_grafanas_model_with_a_prometheus_query_in_every_panel() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36, "schemaVersion");
    assert!(d["uid"].is_string() && d["title"].is_string());
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let mut ids = BTreeSet::new();
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() > 5);
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel id of {title} repeated"
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        if p["type"] == "row" {
            continue;
        }
        assert!(
            ["timeseries", "stat"].contains(&p["type"].as_str().unwrap()),
            "{title}"
        );
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().unwrap()),
                "{title}: refId repeated"
            );
            assert_eq!(t["datasource"], p["datasource"], "{title}");
            assert!(!t["expr"].as_str().unwrap().is_empty(), "{title}");
        }
    }
}

#[test]
fn every_dashboard_query_is_promql_promtool_accepts() {
    let queries = dashboard_queries();
    // The parser the tests read selectors with, and Prometheus's own.
    for (place, q) in &queries {
        assert!(uses(q).is_ok(), "{place}: {q}: {:?}", uses(q).err());
    }
    let tmp = TempDir::new("dashboard-rules");
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, q))| serde_json::json!({ "record": format!("dashboard:query_{i}"), "expr": q }))
        .collect();
    let file = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    std::fs::write(tmp.0.join("queries.yaml"), file.to_string()).unwrap();
    let (ok, out) = promtool(&["check", "rules", "queries.yaml"], &tmp.0);
    assert!(ok, "{out}");
    // and promtool does refuse a query that is not PromQL
    std::fs::write(
        tmp.0.join("bad.yaml"),
        r#"{"groups":[{"name":"d","rules":[{"record":"x:y","expr":"sum by (reason rate(x[5m])"}]}]}"#,
    )
    .unwrap();
    assert!(!promtool(&["check", "rules", "bad.yaml"], &tmp.0).0);
}

#[test]
fn the_shipped_envoy_yaml_has_the_rendered_stats_config() {
    let shipped = std::fs::read_to_string(repo_root().join("envoy.yaml")).unwrap();
    let v: Value = serde_saphyr::from_str(&shipped).unwrap();
    assert_eq!(v["stats_config"], stats_tags::stats_config());
    assert_eq!(v["stats_config"]["use_all_default_tags"], true);
    // and each of its clusters has a stats name without dots
    for c in v["static_resources"]["clusters"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let stat = c["alt_stat_name"].as_str().unwrap_or(name);
        assert!(!stat.contains('.'), "cluster {name}: stats name {stat}");
    }
}

#[test]
fn rendered_gateway_has_the_labels_and_dotless_cluster_stats_names() {
    let config = br#"{"proxy":{"endpoints":{"/a":"http://127.0.0.1:8081","/b":"https://sonar.example.com/x","/c":"http://svc-name:9000"}}}"#;
    let plan = backstage_proxy_core::config::parse(config, &|_| None).unwrap();
    let v = render::gateway(
        &plan,
        std::str::from_utf8(config).unwrap(),
        &[],
        &render::Options::default(),
    )
    .unwrap();
    assert_eq!(v["stats_config"], stats_tags::stats_config());
    let tags = v["stats_config"]["stats_tags"].as_array().unwrap();
    let names: BTreeSet<&str> = tags
        .iter()
        .map(|t| t["tag_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), TAGS.len(), "a label name given twice");
    for c in v["static_resources"]["clusters"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        match c.get("alt_stat_name") {
            Some(alt) => {
                assert!(name.contains('.'), "{name}");
                assert_eq!(alt.as_str().unwrap(), name.replace('.', "_"));
            }
            None => assert!(!name.contains('.'), "{name} has a dot and no stats name"),
        }
    }
}
