//! A header map as read from Envoy: every name and value copied into one
//! buffer, with where each lies, so that a request costs a few
//! allocations however many headers it has (a `String` and a `Vec` per
//! entry cost about 4,500 instructions per request on the benchmark's
//! seven headers: `docs/benchmarks.md#the-native-module-2026-12-06`).
//! The core reads it through [`HeaderMap::view`], borrowed pairs.
//!
//! Names are Envoy's, lower-cased and valid tokens; one that is not UTF-8
//! anyway is kept in its lossy form (as a `String` would have it), so a
//! view never fails. Values are raw bytes.

use std::ops::Range;

use backstage_proxy_core::decision::Header;

#[derive(Debug, Default)]
pub struct HeaderMap {
    /// Every name, one after the other (checked as UTF-8 once, here).
    names: String,
    /// Every value, likewise.
    values: Vec<u8>,
    /// Per entry: the name's range in `names`, the value's in `values`.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl HeaderMap {
    /// Copies `entries`; `names` and `values`, the sums of their names' and
    /// values' lengths, size the buffers once. The names are checked as
    /// UTF-8 together, once.
    pub fn build<'a>(
        entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
        names: usize,
        values: usize,
    ) -> HeaderMap {
        let mut raw_names = Vec::with_capacity(names);
        let mut map = HeaderMap {
            names: String::new(),
            values: Vec::with_capacity(values),
            spans: Vec::with_capacity(entries.len()),
        };
        for (name, value) in entries {
            let n = raw_names.len();
            raw_names.extend_from_slice(name);
            let v = map.values.len();
            map.values.extend_from_slice(value);
            map.spans.push((n..raw_names.len(), v..map.values.len()));
        }
        match String::from_utf8(raw_names) {
            Ok(names) => map.names = names,
            Err(e) => map.lossy_names(&e.into_bytes()),
        }
        map
    }

    /// Some name is not UTF-8: each is kept in its lossy form.
    fn lossy_names(&mut self, raw: &[u8]) {
        for (n, _) in &mut self.spans {
            let start = self.names.len();
            self.names.push_str(&String::from_utf8_lossy(
                raw.get(n.clone()).unwrap_or_default(),
            ));
            *n = start..self.names.len();
        }
    }

    /// The entries, in Envoy's order, borrowed.
    pub fn view(&self) -> Vec<Header<'_>> {
        self.spans
            .iter()
            .map(|(n, v)| {
                (
                    self.names.get(n.clone()).unwrap_or_default(),
                    self.values.get(v.clone()).unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Tests build maps from pairs.
#[cfg(test)]
impl<'a> FromIterator<(&'a [u8], &'a [u8])> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (&'a [u8], &'a [u8])>>(iter: I) -> HeaderMap {
        let entries: Vec<_> = iter.into_iter().collect();
        let names = entries.iter().map(|(n, _)| n.len()).sum();
        let values = entries.iter().map(|(_, v)| v.len()).sum();
        HeaderMap::build(entries.into_iter(), names, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_with_duplicates_and_raw_values() {
        let map: HeaderMap = [
            (&b":path"[..], &b"/api/proxy/x"[..]),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-bin", b"\xff\x00v"),
            (b"empty", b""),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            map.view(),
            vec![
                (":path", &b"/api/proxy/x"[..]),
                ("cookie", b"a=1"),
                ("cookie", b"b=2"),
                ("x-bin", b"\xff\x00v"),
                ("empty", b""),
            ]
        );
        assert_eq!(map.view().len(), 5);
    }

    #[test]
    fn a_name_that_is_not_utf8_is_kept_lossy_and_does_not_shift_the_others() {
        let map: HeaderMap = [
            (&b"first"[..], &b"0"[..]),
            (b"a\xffb", b"1"),
            (b"next", b"2"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            map.view(),
            vec![("first", &b"0"[..]), ("a\u{fffd}b", b"1"), ("next", b"2")]
        );
    }

    #[test]
    fn an_empty_map_is_empty() {
        let map = HeaderMap::build(std::iter::empty::<(&[u8], &[u8])>(), 0, 0);
        assert!(map.view().is_empty());
    }
}
