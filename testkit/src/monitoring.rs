//! The shipped monitoring files (`deploy/prometheus/alerts.yaml`,
//! `deploy/grafana/backstage-proxy.json`) read as Prometheus and Grafana
//! read them, each PromQL query parsed into what it selects, and Envoy's
//! `/stats/prometheus` page parsed into what it offers, so that tests can
//! hold one against the other (`docs/operations.md#dashboard-and-alerts`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, LabelModifier};
use serde_json::Value;

use crate::repo_root;

pub fn alerts_path() -> PathBuf {
    repo_root().join("deploy/prometheus/alerts.yaml")
}

pub fn dashboard_path() -> PathBuf {
    repo_root().join("deploy/grafana/backstage-proxy.json")
}

/// Labels Prometheus adds to every series it scrapes: queries may use them
/// though the gateway's page never shows them.
pub const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// Every alert: (name, expression).
pub fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(alerts_path()).unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in v["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("expr");
            out.push((name.to_string(), expr.to_string()));
        }
    }
    out
}

pub fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dashboard_path()).unwrap()).unwrap()
}

/// Every query of the dashboard (panels' targets and query variables):
/// (where, query as Prometheus receives it, Grafana's variables replaced
/// by what they stand for).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let d = dashboard();
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = format!("panel '{}' {}", p["title"], t["refId"]);
            out.push((title, grafana_to_promql(t["expr"].as_str().expect("expr"))));
        }
    }
    for var in d["templating"]["list"].as_array().expect("templating") {
        if var["type"] == "query" {
            let q = var["query"]["query"].as_str().expect("query.query");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.rsplit_once(','))
                .map(|(sel, _label)| sel.trim())
                .unwrap_or_else(|| {
                    panic!("variable query {q} is not label_values(selector, label)")
                });
            out.push((
                format!("variable {}", var["name"]),
                grafana_to_promql(inner),
            ));
        }
    }
    out
}

/// Grafana's variables as a query gets them with "All" chosen.
pub fn grafana_to_promql(q: &str) -> String {
    q.replace("$__rate_interval", "5m")
        .replace("$instance", ".*")
        .replace("$proxy_endpoint", ".*")
}

/// One vector selector of a query.
#[derive(Debug, Clone)]
pub struct Selector {
    pub metric: String,
    /// (label, operator, value), the metric name's own matcher left out.
    pub matchers: Vec<(String, String, String)>,
}

/// What a query reads: its selectors, and the labels it groups or
/// matches by (`by`, `without`, `on`, `ignoring`, `group_left`).
#[derive(Debug, Default)]
pub struct Uses {
    pub selectors: Vec<Selector>,
    pub grouping: BTreeSet<String>,
}

pub fn uses(query: &str) -> Result<Uses, String> {
    let expr = parser::parse(query)?;
    let mut u = Uses::default();
    walk(&expr, &mut u);
    Ok(u)
}

fn modifier_labels(m: &LabelModifier, u: &mut Uses) {
    u.grouping.extend(m.labels().labels.iter().cloned());
}

fn walk(e: &Expr, u: &mut Uses) {
    match e {
        Expr::Aggregate(a) => {
            if let Some(m) = &a.modifier {
                modifier_labels(m, u);
            }
            walk(&a.expr, u);
            if let Some(p) = &a.param {
                walk(p, u);
            }
        }
        Expr::Unary(x) => walk(&x.expr, u),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if let Some(m) = &m.matching {
                    modifier_labels(m, u);
                }
                if let Some(l) = m.card.labels() {
                    u.grouping.extend(l.labels.iter().cloned());
                }
            }
            walk(&b.lhs, u);
            walk(&b.rhs, u);
        }
        Expr::Paren(x) => walk(&x.expr, u),
        Expr::Subquery(x) => walk(&x.expr, u),
        Expr::VectorSelector(vs) => u.selectors.push(selector(vs)),
        Expr::MatrixSelector(ms) => u.selectors.push(selector(&ms.vs)),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, u)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector(vs: &parser::VectorSelector) -> Selector {
    let metric = vs.name.clone().expect("every selector names its metric");
    let matchers = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .map(|m| {
            let op = match &m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::Re(_) => "=~",
                MatchOp::NotRe(_) => "!~",
            };
            (m.name.clone(), op.to_string(), m.value.clone())
        })
        .collect();
    Selector { metric, matchers }
}

/// `/stats/prometheus` as metric name → label name → values seen.
pub type Exposition = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

pub fn parse_exposition(text: &str) -> Exposition {
    let mut out = Exposition::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _value) = line.rsplit_once(' ').expect("<series> <value>");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let entry = out.entry(name.to_string()).or_default();
        for pair in split_labels(labels) {
            let (k, v) = pair.split_once('=').expect("label=value");
            let v = v.trim_matches('"').to_string();
            entry.entry(k.to_string()).or_default().insert(v);
        }
    }
    out
}

/// `a="x",b="y,z"` → [`a="x"`, `b="y,z"`] (values may hold commas).
fn split_labels(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Where each query's selectors and labels are not on the page: a metric
/// missing, a label it never has, an exact or listed value never seen, a
/// grouping label none of its metrics has. Empty when all are there.
pub fn missing(query: &str, page: &Exposition) -> Vec<String> {
    let u = match uses(query) {
        Ok(u) => u,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let mut out = Vec::new();
    let mut labels_of_query: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
    for s in &u.selectors {
        let Some(labels) = page.get(&s.metric) else {
            out.push(format!("metric {} is not on the page", s.metric));
            continue;
        };
        labels_of_query.extend(labels.keys().map(String::as_str));
        for (name, op, value) in &s.matchers {
            if TARGET_LABELS.contains(&name.as_str()) {
                continue;
            }
            let Some(seen) = labels.get(name) else {
                out.push(format!("{} has no label {name}", s.metric));
                continue;
            };
            // `=`/`!=` name one value, `=~`/`!~` a list of literals or
            // `.*`: each literal must be one the gateway writes.
            let wanted: Vec<&str> = match op.as_str() {
                "=" | "!=" => vec![value.as_str()],
                _ if value == ".*" || value == ".+" => vec![],
                _ => value.split('|').collect(),
            };
            for w in wanted {
                if !seen.contains(w) {
                    out.push(format!(
                        "{}{{{name}{op}\"{value}\"}}: no series has {name}=\"{w}\"",
                        s.metric
                    ));
                }
            }
        }
    }
    for g in &u.grouping {
        if !labels_of_query.contains(g.as_str()) {
            out.push(format!(
                "grouping label {g} is on none of the query's metrics"
            ));
        }
    }
    out
}

/// `promtool` (Debian's `prometheus` package): a test that needs it fails
/// loudly when it is missing.
pub fn promtool(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is needed (apt-get install --no-install-recommends prometheus): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
