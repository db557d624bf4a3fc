//! A YAML syntax error as editors and compilers give it: `file:line:col:
//! message`, then the line with a caret under the column
//! (`docs/cli.md#check`). The line's values are
//! masked, so that a token on it never reaches a CI log.

use super::LoadError;
use crate::appconfig::Position;

/// The error, at the place the mistake is.
pub(super) fn error(file: &str, text: &str, e: &serde_saphyr::Error) -> LoadError {
    let reported = e.location().map(|l| Position {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX),
        column: u32::try_from(l.column()).unwrap_or(u32::MAX),
    });
    let message = message(&e.to_string());
    let at = match reported {
        Some(at) if message.contains("tab") => Some(tab_near(text, at).unwrap_or(at)),
        other => other.filter(|at| at.line > 0),
    };
    LoadError {
        file: file.to_string(),
        message,
        excerpt: at.and_then(|at| excerpt(text, at)),
        at,
        ..LoadError::default()
    }
}

/// The parser's headline (its first line, without the place it repeats and
/// without the snippet, which would quote the file), in the tool's words
/// where they say more.
fn message(display: &str) -> String {
    let first = display.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let headline = match first.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, m)| m),
        None => first,
    };
    if let Some(key) = headline.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return format!("duplicate key '{key}': a key may appear once in a mapping (Backstage's loader refuses it too)");
    }
    if headline.contains("tab") {
        return format!("a tab where YAML expects spaces ({headline})");
    }
    format!("not valid YAML: {headline}")
}

/// Where the tab is. The parser reports a tab in indentation just after
/// it, and a tab that starts the line after a plain value at the end of
/// that value, one line early: the tab itself is the last one on the
/// reported line up to the column, or else the first one after it.
fn tab_near(text: &str, at: Position) -> Option<Position> {
    let first_line = usize::try_from(at.line).ok()?.checked_sub(1)?;
    let column = usize::try_from(at.column).ok()?;
    for (i, line) in text.lines().enumerate().skip(first_line) {
        let chars: Vec<char> = line.chars().collect();
        let found = if i == first_line {
            let upto = chars.get(..column.min(chars.len())).unwrap_or_default();
            upto.iter().rposition(|c| *c == '\t').or_else(|| {
                chars
                    .iter()
                    .skip(column)
                    .position(|c| *c == '\t')
                    .map(|p| p + column)
            })
        } else {
            chars.iter().position(|c| *c == '\t')
        };
        if let Some(col) = found {
            return Some(Position {
                line: u32::try_from(i + 1).ok()?,
                column: u32::try_from(col + 1).ok()?,
            });
        }
    }
    None
}

/// The line, its values masked and a tab shown as `→`, and a caret under
/// the column, each after a gutter with the line number.
fn excerpt(text: &str, at: Position) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
    let shown = mask(line);
    let number = at.line.to_string();
    let gutter = " ".repeat(number.len());
    let caret = " ".repeat(usize::try_from(at.column).ok()?.saturating_sub(1));
    Some(format!("{number} | {shown}\n{gutter} | {caret}^"))
}

/// Characters a masked line keeps: YAML's punctuation, so that its
/// structure still shows.
const STRUCTURE: &[char] = &[
    ' ', ':', '{', '}', '[', ']', ',', '#', '\'', '"', '&', '*', '!', '|', '>', '?',
];

/// The line with keys kept and everything after the first `: ` (or a
/// list's `- `) masked with `*`, character for character, so that columns
/// stay where they were.
fn mask(line: &str) -> String {
    let value_from = line
        .find(": ")
        .map(|i| i + 2)
        .or_else(|| line.trim_end().ends_with(':').then_some(line.len()))
        .unwrap_or_else(|| line.len() - line.trim_start_matches([' ', '\t', '-']).len());
    let mut out = String::with_capacity(line.len());
    for (i, c) in line.char_indices() {
        out.push(match c {
            '\t' => '→',
            c if i < value_from || STRUCTURE.contains(&c) => c,
            _ => '*',
        });
    }
    out
}

#[cfg(test)]
mod tests;
