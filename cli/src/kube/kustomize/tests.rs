use super::*;

fn vars() -> Vec<String> {
    vec!["A".to_string(), "B".to_string()]
}

/// A value the env file format cannot hold (a line break would start a
/// new key) is refused, naming the variable, never written cut short.
#[test]
fn a_value_with_a_line_break_is_refused() {
    for value in ["x\ny", "x\r\ny", "x\r"] {
        let get = |v: &str| {
            Some(if v == "B" {
                value.to_string()
            } else {
                "ok".to_string()
            })
        };
        let err = env_file(Path::new("/nonexistent/x.env"), &vars(), Some(&get)).unwrap_err();
        assert!(
            err.to_string().contains("the value of B has a line break"),
            "{err}"
        );
    }
}

/// Without values an existing file is kept line for line (comments, a
/// filled value, keys the configuration no longer needs) and only missing
/// keys are added; the keys reported empty are the configuration's.
#[test]
fn an_existing_env_file_is_kept() {
    let dir = backstage_proxy_testkit::TempDir::new("env-file");
    let path = dir.0.join("s.env");
    std::fs::write(&path, "# mine\nA=filled\nOLD=\n  C=x").unwrap();
    let (text, empty) = env_file(&path, &["A".into(), "B".into(), "OLD2".into()], None).unwrap();
    assert_eq!(text, "# mine\nA=filled\nOLD=\n  C=x\nB=\nOLD2=\n");
    assert_eq!(empty, ["B", "OLD2"]);
}
