//! Merging app-config files in order, as Backstage merges them: later
//! files win, objects merge key by key, everything else is replaced. Every
//! value remembers which file gave it, so errors name their file.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::positions::Position;
use super::source::ConfigFile;

/// The merged configuration and, for each JSON path, the file it came from.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub value: Value,
    pub origin: BTreeMap<String, String>,
    /// For each file, where each of its JSON paths was written.
    pub positions: BTreeMap<String, BTreeMap<String, Position>>,
}

impl Merged {
    /// The file that gave `path` (or its nearest ancestor).
    pub fn file_of(&self, path: &str) -> String {
        let mut p = path.to_string();
        loop {
            if let Some(f) = self.origin.get(&p) {
                return f.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return self.origin.get("").cloned().unwrap_or_default(),
            }
        }
    }

    /// Where `path` (or its nearest ancestor written there) is in the file
    /// that gave it.
    pub fn position_of(&self, path: &str) -> Option<Position> {
        let places = self.positions.get(&self.file_of(path))?;
        let mut p = path;
        loop {
            if let Some(at) = places.get(p) {
                return Some(*at);
            }
            p = p.get(..p.rfind(['.', '['])?)?;
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Merges in order: later files override earlier ones, objects key by key.
pub fn merge(sources: &[ConfigFile]) -> Merged {
    let mut merged = Merged {
        value: Value::Object(Map::new()),
        origin: BTreeMap::new(),
        positions: BTreeMap::new(),
    };
    for s in sources {
        merge_into(&mut merged.value, &s.value, "", &s.name, &mut merged.origin);
        merged
            .positions
            .entry(s.name.clone())
            .or_default()
            .extend(s.positions.iter().map(|(k, v)| (k.clone(), *v)));
    }
    merged
}

fn record(origin: &mut BTreeMap<String, String>, path: &str, v: &Value, file: &str) {
    origin.insert(path.to_string(), file.to_string());
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                record(origin, &join(path, k), v, file);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                record(origin, &format!("{path}[{i}]"), v, file);
            }
        }
        _ => {}
    }
}

fn merge_into(
    dst: &mut Value,
    src: &Value,
    path: &str,
    file: &str,
    origin: &mut BTreeMap<String, String>,
) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                let p = join(path, k);
                match d.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v, &p, file, origin)
                    }
                    _ => {
                        origin.retain(|key, _| {
                            !(key == &p
                                || key.starts_with(&format!("{p}."))
                                || key.starts_with(&format!("{p}[")))
                        });
                        d.insert(k.clone(), v.clone());
                        record(origin, &p, v, file);
                    }
                }
            }
        }
        (d, s) => {
            *d = s.clone();
            record(origin, path, s, file);
        }
    }
}

#[cfg(test)]
mod tests;
