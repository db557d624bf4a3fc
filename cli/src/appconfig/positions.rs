//! Where each value of a YAML file was written: its JSON path → the line
//! and column of its key (of the item, in a list), so that a finding about
//! a JSON path can say where in the file to look
//! (`docs/cli.md#check`).

use std::collections::BTreeMap;

use serde_saphyr::granit_parser::{Event, Parser, Span};

/// A place in a file, both counted from 1 (the column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    fn of(span: &Span) -> Position {
        Position {
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            column: u32::try_from(span.start.col().saturating_add(1)).unwrap_or(u32::MAX),
        }
    }
}

/// What the walk is inside of.
enum Frame {
    /// A mapping at `path`, and the key whose value comes next.
    Map {
        path: String,
        key: Option<(String, Position)>,
    },
    /// A list at `path`, and the index of its next item.
    List { path: String, next: usize },
    /// A node without a JSON path (a key that is itself a mapping or list).
    Skip,
}

/// Every JSON path of the file's first document and where it was written.
/// A file the parser refuses gives what was read before the error (the
/// error itself is reported by the loader).
pub fn positions(text: &str) -> BTreeMap<String, Position> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_seen = false;
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        match event {
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if stack.is_empty() && root_seen {
                    break;
                }
            }
            Event::Scalar(..) | Event::Alias(_) => {
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    let name = match &event {
                        Event::Scalar(text, ..) => text.to_string(),
                        _ => "*".to_string(),
                    };
                    *key = Some((name, Position::of(&span)));
                    continue;
                }
                if next_path(&mut stack, &span, &mut out).is_none() && stack.is_empty() {
                    break;
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let frame = match next_path(&mut stack, &span, &mut out) {
                    None => Frame::Skip,
                    Some(path) if matches!(event, Event::MappingStart(..)) => {
                        Frame::Map { path, key: None }
                    }
                    Some(path) => Frame::List { path, next: 0 },
                };
                root_seen = true;
                stack.push(frame);
            }
            _ => {}
        }
    }
    out
}

/// The JSON path of the node that starts at `span`, recorded with where it
/// was written; `None` for a node that has none (a complex key, or inside
/// one).
fn next_path(
    stack: &mut [Frame],
    span: &Span,
    out: &mut BTreeMap<String, Position>,
) -> Option<String> {
    let (path, at) = match stack.last_mut() {
        None => (String::new(), Position::of(span)),
        Some(Frame::Skip) => return None,
        Some(Frame::Map { path, key }) => match key.take() {
            // A mapping or list as a key: its insides have no path, its
            // value goes by "?".
            None => {
                *key = Some(("?".to_string(), Position::of(span)));
                return None;
            }
            Some((k, at)) if path.is_empty() => (k, at),
            Some((k, at)) => (format!("{path}.{k}"), at),
        },
        Some(Frame::List { path, next }) => {
            let p = format!("{path}[{next}]");
            *next += 1;
            (p, Position::of(span))
        }
    };
    out.entry(path.clone()).or_insert(at);
    Some(path)
}

#[cfg(test)]
mod tests;
