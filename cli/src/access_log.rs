//! The access log every output gives Envoy: one JSON line per request,
//! with who called which endpoint and what the filter decided (the
//! filter's filter state). The path is logged without its query (query
//! strings carry API keys), and no header is logged.

use backstage_proxy_core::audit;
use serde_json::{json, Value};

/// Envoy's file access logger writing [`fields`] to `path` (`render`).
pub(crate) fn file_logger(path: &str) -> Value {
    json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": { "json_format": fields() }
        }
    })
}

/// The access log's JSON fields (Envoy command operators), the same for
/// `render` and Envoy Gateway's `EnvoyProxy`.
pub fn fields() -> Value {
    let state = audit::wasm_filter_state;
    json!({
        "time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "upstream_path": "%PATH(NQ)%",
        "status": "%RESPONSE_CODE%",
        "principal": state(audit::PRINCIPAL_KEY),
        "endpoint": state(audit::ENDPOINT_KEY),
        "decision": state(audit::DECISION_KEY),
        // The Backstage permissions asked and their answers, when any were.
        "permission": state(audit::PERMISSION_KEY),
        // The cluster's own name, not the stats name `render` gives it.
        "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
        "duration_ms": "%DURATION%",
        "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
    })
}
