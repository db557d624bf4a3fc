//! The documentation's links hold: every relative link in README.md,
//! docs/**/*.md and tests/CATALOG.md names a file that exists, and a
//! `#anchor` on a link to a Markdown file (or on a link within the page)
//! names a heading of that file, slugged as GitHub slugs headings
//! (lower-case; letters, digits, `-` and `_` kept; spaces to `-`; anything
//! else dropped; `-1`, `-2` … after a repeated heading). Links inside code
//! (fenced blocks, inline code) are not links. The checker is also run on
//! planted mistakes, which it must report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

mod common;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the cli crate sits in the workspace root")
        .to_path_buf()
}

/// The Markdown files whose links are checked, relative to the root.
fn documents(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(path);
            }
        }
    }
    let mut docs = vec![root.join("README.md"), root.join("tests/CATALOG.md")];
    walk(&root.join("docs"), &mut docs);
    docs
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push(line),
            _ => {}
        }
    }
    out
}

/// A line without its inline code spans.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let closing = "`".repeat(ticks);
        match after.find(&closing) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of the inline links and images of a Markdown text.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let mut depth = 0usize;
            let mut end = None;
            for (j, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = Some(j);
                        break;
                    }
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            let Some(end) = end else { break };
            let raw = after[..end].trim();
            // `<target>` and `target "title"`.
            let target = raw
                .strip_prefix('<')
                .and_then(|t| t.split_once('>'))
                .map(|(t, _)| t)
                .unwrap_or_else(|| raw.split_whitespace().next().unwrap_or(""));
            targets.push(target.to_string());
            rest = &after[end + 1..];
        }
    }
    targets
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    // Links in headings count by their text: `[text](url)` → `text`.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's ATX headings, repeats numbered.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 {
            continue;
        }
        let Some(title) = line[hashes..].strip_prefix(' ') else {
            continue;
        };
        let title = title.trim().trim_end_matches('#').trim_end();
        let base = slug(title);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `base/..` and `.` resolved without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Every broken link of the document `path` (whose text is `text`), as
/// `path: target: why`. `read` gives another file's text by its path.
fn broken_links(
    path: &Path,
    text: &str,
    exists: &dyn Fn(&Path) -> bool,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let dir = path.parent().unwrap_or(Path::new(""));
    for target in link_targets(text) {
        let is_external =
            target.contains("://") || target.starts_with("mailto:") || target.starts_with("//");
        if is_external {
            continue;
        }
        let (file, anchor) = match target.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (target.as_str(), None),
        };
        if file.is_empty() && anchor.is_none() {
            errors.push(format!("{}: empty link", path.display()));
            continue;
        }
        let resolved = if file.is_empty() {
            path.to_path_buf()
        } else if let Some(from_root) = file.strip_prefix('/') {
            PathBuf::from(from_root)
        } else {
            normalise(&dir.join(file))
        };
        if !file.is_empty() && !exists(&resolved) {
            errors.push(format!(
                "{}: {target}: no such file ({})",
                path.display(),
                resolved.display()
            ));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if resolved.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let target_text = if file.is_empty() {
            Some(text.to_string())
        } else {
            read(&resolved)
        };
        let Some(target_text) = target_text else {
            errors.push(format!("{}: {target}: unreadable", path.display()));
            continue;
        };
        if !anchors(&target_text).contains(anchor) {
            errors.push(format!(
                "{}: {target}: no heading with the anchor #{anchor} in {}",
                path.display(),
                resolved.display()
            ));
        }
    }
    errors
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let root = repo_root();
    let exists = |p: &Path| root.join(p).exists();
    let read = |p: &Path| std::fs::read_to_string(root.join(p)).ok();
    let docs = documents(&root);
    assert!(
        docs.len() > 3,
        "README.md, tests/CATALOG.md and docs/: {docs:?}"
    );
    let mut errors = Vec::new();
    let mut links = 0;
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        links += link_targets(&text).len();
        let rel = doc.strip_prefix(&root).unwrap();
        errors.extend(broken_links(rel, &text, &exists, &read));
    }
    assert!(links > 100, "the links were read: {links}");
    assert!(
        errors.is_empty(),
        "{} broken link(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn slugs_follow_githubs_rule() {
    assert_eq!(slug("Request pipeline"), "request-pipeline");
    assert_eq!(
        slug("4. Credentials per endpoint"),
        "4-credentials-per-endpoint"
    );
    assert_eq!(slug("`gateway`"), "gateway");
    assert_eq!(slug("Access log: who did what"), "access-log-who-did-what");
    assert_eq!(slug("Backstage's proxy"), "backstages-proxy");
    assert_eq!(slug("Host and `:authority`"), "host-and-authority");
    assert_eq!(slug("snake_case and-dash"), "snake_case-and-dash");
    assert_eq!(slug("See [the page](x.md) now"), "see-the-page-now");
    let text = "# Title\n## Twice\n## Twice\n```sh\n# not a heading\n```\n";
    let a = anchors(text);
    assert!(a.contains("title") && a.contains("twice") && a.contains("twice-1"));
    assert!(!a.contains("not-a-heading"));
}

#[test]
fn planted_mistakes_are_reported() {
    let files: BTreeMap<&str, &str> = [
        ("docs/a.md", "# A\n\n## Real heading\n"),
        ("docs/b.md", "# B\n"),
        ("envoy.yaml", ""),
    ]
    .into_iter()
    .collect();
    let exists = |p: &Path| files.contains_key(p.to_str().unwrap());
    let read = |p: &Path| files.get(p.to_str().unwrap()).map(|s| s.to_string());
    let page = "# Page\n\n## Here\n\n\
        [ok](a.md#real-heading) [ok](b.md) [ok](../envoy.yaml) [ok](#here)\n\
        [ok](https://example.com/x#y) `[code](missing.md)`\n\
        ```\n[fenced](missing.md)\n```\n\
        [bad file](missing.md)\n\
        [bad anchor](a.md#no-such-heading)\n\
        [bad local anchor](#nowhere)\n\
        [bad parent](../../outside.md)\n";
    let errors = broken_links(Path::new("docs/page.md"), page, &exists, &read);
    let joined = errors.join("\n");
    assert_eq!(errors.len(), 4, "{joined}");
    for needle in [
        "missing.md: no such file",
        "a.md#no-such-heading: no heading",
        "#nowhere: no heading",
        "../../outside.md: no such file",
    ] {
        assert!(joined.contains(needle), "{needle} not reported:\n{joined}");
    }
}

/// Every source file whose comments may cite the docs.
fn sources(root: &Path) -> Vec<PathBuf> {
    let keep = |path: &Path| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        path.extension()
            .is_some_and(|x| x == "rs" || x == "py" || x == "yaml" || x == "yml")
            || name == "Makefile"
    };
    let mut out = Vec::new();
    for dir in [
        "src", "core", "cli", "native", "testkit", "tests", "benches", "bench", "fuzz", "examples",
    ] {
        common::files_below(&root.join(dir), &keep, &mut out);
    }
    out.push(root.join("Makefile"));
    out.push(root.join("envoy.yaml"));
    // This file plants citations of pages that do not exist.
    out.retain(|p| !p.ends_with("cli/tests/docs_links.rs"));
    out.sort();
    out
}

/// The `docs/<page>.md[#anchor]` citations in a text.
fn doc_citations(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("docs/") {
        let cited: String = rest[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '#' | '-' | '_'))
            .collect();
        rest = &rest[i + 5..];
        let cited = cited.trim_end_matches('.');
        let (file, anchor) = match cited.split_once('#') {
            Some((f, a)) => (f, Some(a.to_string())),
            None => (cited, None),
        };
        if file.ends_with(".md") {
            out.push((file.to_string(), anchor));
        }
    }
    out
}

#[test]
fn every_docs_page_and_anchor_the_code_cites_exists() {
    let root = repo_root();
    let mut errors = Vec::new();
    let mut cited = 0;
    for source in sources(&root) {
        let Ok(text) = std::fs::read_to_string(&source) else {
            continue;
        };
        for (file, anchor) in doc_citations(&text) {
            cited += 1;
            let rel = source.strip_prefix(&root).unwrap().display().to_string();
            let Ok(page) = std::fs::read_to_string(root.join(&file)) else {
                errors.push(format!("{rel}: {file}: no such page"));
                continue;
            };
            if let Some(a) = anchor {
                if !anchors(&page).contains(&a) {
                    errors.push(format!("{rel}: {file}#{a}: no such heading"));
                }
            }
        }
    }
    assert!(cited > 10, "the citations were read: {cited}");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn a_citation_of_a_missing_heading_is_caught() {
    let c = doc_citations("// see `docs/contract.md#cors`, docs/cors.md. and docs/x/");
    assert_eq!(
        c,
        vec![
            ("docs/contract.md".to_string(), Some("cors".to_string())),
            ("docs/cors.md".to_string(), None)
        ]
    );
    let page = std::fs::read_to_string(repo_root().join("docs/contract.md")).unwrap();
    assert!(anchors(&page).contains("cors"));
    assert!(!anchors(&page).contains("no-such-heading"));
}
