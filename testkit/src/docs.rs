//! The project's documentation as the tests read it: a section of a page,
//! its `sh` blocks, and each block's commands with the comments that say
//! what they answer. Tests that run a page's commands verbatim use these,
//! so the page is exactly what they run.

use std::path::Path;

/// The section under `heading` (a whole heading line, `## Quick start`) in
/// the page `rel` (relative to the repository root), up to the next heading
/// of the same or a higher level.
pub fn section(rel: &str, heading: &str) -> String {
    let text = std::fs::read_to_string(crate::repo_root().join(Path::new(rel)))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = text.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "{rel} has no heading {heading:?}");
    let mut out = String::new();
    let mut fenced = false;
    for line in lines {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !fenced && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The `sh` fenced blocks of a section, in order.
pub fn sh_blocks(section: &str) -> Vec<String> {
    blocks(section, "sh")
}

/// The fenced blocks of a section in `lang` (```` ```yaml ````), in order.
pub fn blocks(section: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l == fence => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// One command of a block: its text (continuation lines joined), the
/// comment on its own last line (after ` # `), and the comment lines that
/// follow it directly (before a blank line or the next command), `# `
/// removed.
#[derive(Debug, Clone)]
pub struct Step {
    pub command: String,
    pub inline: Option<String>,
    pub after: Vec<String>,
}

/// The commands of a `sh` block, in order.
pub fn steps(block: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut pending = String::new();
    let mut following = false;
    for line in block.lines() {
        let t = line.trim();
        if !pending.is_empty() {
            match t.strip_suffix('\\') {
                Some(part) => pending.push_str(&format!("{} ", part.trim())),
                None => {
                    pending.push_str(t);
                    steps.push(step(&pending));
                    pending.clear();
                    following = true;
                }
            }
            continue;
        }
        if t.is_empty() {
            following = false;
        } else if let Some(comment) = t.strip_prefix('#') {
            if following {
                if let Some(last) = steps.last_mut() {
                    last.after.push(comment.trim().to_string());
                }
            }
        } else if let Some(part) = t.strip_suffix('\\') {
            pending = format!("{} ", part.trim());
        } else {
            steps.push(step(t));
            following = true;
        }
    }
    assert!(
        pending.is_empty(),
        "a command continues past its block: {pending}"
    );
    steps
}

fn step(line: &str) -> Step {
    let (command, inline) = match line.rsplit_once(" # ") {
        Some((c, i)) => (c.trim(), Some(i.trim().to_string())),
        None => (line.trim(), None),
    };
    Step {
        command: command.to_string(),
        inline,
        after: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_their_inline_answers_and_the_comments_after_them() {
        let block = "# intro, not an answer\nmake build   # build/plugin.wasm\ncurl -i \\\n  'http://x/y?a=1'\n# HTTP/1.1 200 OK\n# allow: GET\n\n# next\ncurl a | grep -c b   # 1\n";
        let s = steps(block);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].command, "make build");
        assert_eq!(s[0].inline.as_deref(), Some("build/plugin.wasm"));
        assert_eq!(s[1].command, "curl -i 'http://x/y?a=1'");
        assert_eq!(s[1].after, ["HTTP/1.1 200 OK", "allow: GET"]);
        assert!(s[0].after.is_empty() && s[2].after.is_empty());
        assert_eq!(s[2].inline.as_deref(), Some("1"));
    }
}
