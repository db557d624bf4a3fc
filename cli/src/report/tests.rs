use super::*;
use crate::appconfig::{load_yaml, Position};

fn finding(file: &str, path: &str, message: &str, at: Option<(u32, u32)>) -> LoadError {
    LoadError {
        file: file.to_string(),
        path: path.to_string(),
        message: message.to_string(),
        at: at.map(|(line, column)| Position { line, column }),
        excerpt: None,
    }
}

/// Each finding with its severity, rule, file, line, column and path;
/// what is not known is null, never made up.
#[test]
fn json_gives_every_finding_its_place() {
    let syntax = load_yaml("a b.yaml", "a: 'x\n").unwrap_err();
    let errors = [
        syntax,
        finding(
            "a b.yaml",
            "proxy.endpoints./x.autth",
            "unknown key 'autth'",
            Some((3, 7)),
        ),
        finding(
            "environment",
            "APP_CONFIG_x_1",
            "invalid environment config key",
            None,
        ),
    ];
    let warnings = [finding(
        "",
        "",
        "neither backend.baseUrl nor gateway.backendUrl is set",
        None,
    )];
    let v = json(&errors, &warnings, None, false);
    assert_eq!(v["ok"], false);
    assert_eq!(
        (v["errors"].as_u64(), v["warnings"].as_u64()),
        (Some(3), Some(1))
    );
    let f = v["findings"].as_array().unwrap();
    assert_eq!(
        f[0],
        json!({"severity": "error", "rule": "yaml-syntax", "file": "a b.yaml", "line": 1, "column": 4, "path": null, "message": "not valid YAML: unclosed quote"})
    );
    assert_eq!(
        f[1],
        json!({"severity": "error", "rule": "unknown-key", "file": "a b.yaml", "line": 3, "column": 7, "path": "proxy.endpoints./x.autth", "message": "unknown key 'autth'"})
    );
    assert_eq!(f[2]["rule"], "invalid-configuration");
    assert_eq!(
        f[3],
        json!({"severity": "warning", "rule": "configuration-warning", "file": null, "line": null, "column": null, "path": null, "message": "neither backend.baseUrl nor gateway.backendUrl is set"})
    );
}

/// SARIF: one result per finding, its rule among the run's rules, the file
/// as a URI (escaped; absolute ones as file://), the region where known,
/// the JSON path as a logical location; standard input and the
/// environment are no file.
#[test]
fn sarif_results_point_at_files_and_paths() {
    let errors = [
        finding("conf/a b.yaml", "proxy.endpoints./x", "m1", Some((2, 5))),
        finding("/etc/backstage/app-config.yaml", "", "m2", None),
        finding("<stdin>", "proxy", "m3", Some((1, 1))),
    ];
    let v = sarif(&errors, &[]);
    let run = &v["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(
        results[0]["locations"][0],
        json!({
            "physicalLocation": {"artifactLocation": {"uri": "conf/a%20b.yaml"}, "region": {"startLine": 2, "startColumn": 5}},
            "logicalLocations": [{"fullyQualifiedName": "proxy.endpoints./x", "kind": "member"}]
        })
    );
    assert_eq!(results[0]["message"]["text"], "proxy.endpoints./x: m1");
    assert_eq!(
        results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "file:///etc/backstage/app-config.yaml"
    );
    assert!(results[2]["locations"][0].get("physicalLocation").is_none());
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][i]["id"], r["ruleId"]);
        assert_eq!(r["level"], "error");
    }
}
