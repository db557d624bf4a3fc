//! The JSON toolbox every output writes with: keys set on objects (and the
//! objects on the way created), and durations as protobuf's JSON writes
//! them (Envoy's and Istio's `timeout` fields).

use serde_json::{json, Value};

/// Sets `key` on a JSON object (no-op on anything else).
pub(crate) fn set(v: &mut Value, key: &str, val: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), val);
    }
}

/// Sets `key` on the object at `path` below `v`, creating objects on the way.
pub(crate) fn set_in(v: &mut Value, path: &[&str], key: &str, val: Value) {
    let mut node = v;
    for k in path {
        let Some(o) = node.as_object_mut() else {
            return;
        };
        node = o.entry(k.to_string()).or_insert_with(|| json!({}));
    }
    set(node, key, val);
}

/// Milliseconds as a protobuf JSON duration: `30s`, `1.500s`.
pub(crate) fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

#[cfg(test)]
mod tests;
