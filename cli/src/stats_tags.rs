//! Prometheus labels from the filter's counter names (see
//! `docs/operations.md#metrics`): Envoy's tag extraction
//! (`stats_config.stats_tags`) takes the dimensions out of a name such as
//! `wasmcustom.backstage_proxy.endpoint.sonarqube.denied.invalid_token`
//! and hands them to `/stats/prometheus` as labels, so that Prometheus
//! sees `backstage_proxy_endpoint{proxy_endpoint="sonarqube",
//! outcome="denied",reason="invalid_token"}`.
//!
//! In each regex the first capture group is the part of the name removed,
//! the second the label's value. The filter's names are dot-separated and
//! an endpoint's stats name holds no dot (`[A-Za-z0-9_-]` only), so every
//! regex is anchored at both ends and matches exactly the names the filter
//! defines. The `/stats` page keeps the full names.

use serde_json::{json, Value};

/// One label: its name and the regex that finds its value.
pub struct Tag {
    pub name: &'static str,
    pub regex: &'static str,
}

/// The labels, one regex each (Envoy refuses a label name given twice).
pub const TAGS: [Tag; 5] = [
    // `endpoint.<name>.allowed`, `endpoint.<name>.denied.<reason>`. Not
    // `endpoint`: the Prometheus Operator sets a target label of that name.
    Tag {
        name: "proxy_endpoint",
        regex: r"^wasmcustom\.backstage_proxy\.endpoint(\.([A-Za-z0-9_-]+))\.(?:allowed|denied\.[a-z_]+)$",
    },
    Tag {
        name: "outcome",
        regex: r"^wasmcustom\.backstage_proxy\.endpoint\.[A-Za-z0-9_-]+(\.(allowed|denied))(?:\.[a-z_]+)?$",
    },
    // `denied.<reason>` and `endpoint.<name>.denied.<reason>`.
    Tag {
        name: "reason",
        regex: r"^wasmcustom\.backstage_proxy\.(?:endpoint\.[A-Za-z0-9_-]+\.)?denied(\.([a-z_]+))$",
    },
    // `keyset.fetch_<result>` and `token_cache.<result>`.
    Tag {
        name: "result",
        regex: r"^wasmcustom\.backstage_proxy\.(?:keyset\.fetch|token_cache)([._](success|failure|rationed|hit|miss))$",
    },
    // `vm_memory_bytes.w<n>`: one gauge per plugin instance.
    Tag {
        name: "vm",
        regex: r"^wasmcustom\.backstage_proxy\.vm_memory_bytes(\.(w[0-9]+))$",
    },
];

/// The bootstrap's `stats_config`: Envoy's own labels (`envoy_cluster_name`,
/// `envoy_response_code_class`, …) and the filter's.
pub fn stats_config() -> Value {
    let tags: Vec<Value> = TAGS
        .iter()
        .map(|t| json!({ "tag_name": t.name, "regex": t.regex }))
        .collect();
    json!({ "use_all_default_tags": true, "stats_tags": tags })
}

/// A cluster's name in stats (`alt_stat_name`) when its own has dots: the
/// same with `_` for `.`. Envoy's cluster label (`envoy_cluster_name`,
/// `^cluster\.((.+?)\.)`) ends at the first dot, so `http_127.0.0.1_8081`
/// would give the label `http_127` and leave `0_0_1_8081` in every metric
/// name. Two clusters whose names differ only there share their counters.
pub fn cluster_stat_name(cluster: &str) -> Option<String> {
    cluster.contains('.').then(|| cluster.replace('.', "_"))
}
