//! Every atomic ordering stronger than Relaxed in the library sources of
//! `svshm-channel` and `svshm` must say what it pairs with: a `// SYNC:`
//! comment within the 3 lines above it, or in the comment block directly above
//! the statement it is part of (for a call spread over several lines).
//!
//! Test code (`#[cfg(test)]` items, `tests/`) is not checked. Orderings must be
//! spelled `Ordering::X`; importing the variants (`use Ordering::*`) is
//! refused, since the check would not see them.

use std::fs;
use std::path::{Path, PathBuf};

const STRONG: [&str; 4] = [
    "Ordering::Acquire",
    "Ordering::Release",
    "Ordering::AcqRel",
    "Ordering::SeqCst",
];

/// How many lines above an ordering a `SYNC:` comment may sit.
const WINDOW: usize = 3;

/// The code part of a line: without a trailing `//` comment, and with string
/// and character literals blanked (so braces or `//` inside them do not count).
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => break,
            b'"' => {
                out.push('"');
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push('"');
            }
            // A char literal like '{' or '\'' (not a lifetime: those have no
            // closing quote two or three bytes on).
            b'\'' if b.get(i + 2) == Some(&b'\'') => {
                out.push_str("' '");
                i += 2;
            }
            b'\'' if b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'') => {
                out.push_str("' '");
                i += 3;
            }
            c => out.push(c as char),
        }
        i += 1;
    }
    out
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

/// Marks the lines of `#[cfg(test)]` / `#[cfg(all(test, ...))]` items (and
/// `#[test]` functions) as skipped.
fn test_lines(lines: &[&str]) -> Vec<bool> {
    let mut skip = vec![false; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let is_test_attr = t == "#[test]"
            || (t.starts_with("#[cfg(") && !t.contains("not(test") && {
                let inner = &t["#[cfg(".len()..];
                inner.starts_with("test)") || inner.starts_with("all(test")
            });
        if !is_test_attr {
            i += 1;
            continue;
        }
        // Skip the item: up to its `;` if it has no body, else to the brace
        // that closes its body.
        let mut depth = 0i32;
        let mut opened = false;
        let mut j = i;
        while j < lines.len() {
            skip[j] = true;
            let code = code_of(lines[j]);
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let ended_without_body = !opened && j > i && code.trim_end().ends_with(';');
            if (opened && depth <= 0) || ended_without_body {
                break;
            }
            j += 1;
        }
        i = j + 1;
    }
    skip
}

/// The 1-based numbers of lines in `src` whose strong ordering has no `SYNC:`
/// comment, plus lines that import ordering variants (which would hide them).
fn unpaired(src: &str) -> Vec<usize> {
    let lines: Vec<&str> = src.lines().collect();
    let skip = test_lines(&lines);
    let mut bad = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if skip[n] || is_comment(line) {
            continue;
        }
        let code = code_of(line);
        if code.contains("Ordering::{") || code.contains("Ordering::*") {
            bad.push(n + 1);
            continue;
        }
        if !STRONG.iter().any(|o| code.contains(o)) {
            continue;
        }
        // The statement this line belongs to starts where the line above
        // ends one (`;`, `{`, `}`) or is a comment or blank.
        let mut start = n;
        while start > 0 {
            let above = lines[start - 1];
            let c = code_of(above);
            let c = c.trim_end();
            if is_comment(above) || c.is_empty() || c.ends_with([';', '{', '}']) {
                break;
            }
            start -= 1;
        }
        // The comment block directly above the statement...
        let mut top = start;
        while top > 0 && is_comment(lines[top - 1]) {
            top -= 1;
        }
        // ...or the 3 lines above the ordering itself.
        let from = top.min(n.saturating_sub(WINDOW));
        if !lines[from..n].iter().any(|l| l.contains("SYNC:")) {
            bad.push(n + 1);
        }
    }
    bad
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_strong_ordering_names_its_pair() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "../svshm/src"] {
        rust_files(&root.join(dir).canonicalize().unwrap(), &mut files);
    }
    files.sort();
    assert!(files.len() > 10, "found too few sources: {files:?}");
    let mut report = String::new();
    for f in &files {
        let src = fs::read_to_string(f).unwrap();
        for n in unpaired(&src) {
            let line = src.lines().nth(n - 1).unwrap().trim();
            report.push_str(&format!("{}:{n}: {line}\n", f.display()));
        }
    }
    assert!(
        report.is_empty(),
        "atomic orderings without a `// SYNC:` comment naming what they pair \
         with (add one within the {WINDOW} lines above):\n{report}"
    );
}

#[test]
fn a_release_store_without_sync_fails() {
    let src = "\
fn publish(c: &Cursors, h: u64) {
    let x = 1;
    c.head.store(h, Ordering::Release);
}
";
    assert_eq!(unpaired(src), vec![3]);
}

#[test]
fn a_sync_comment_further_up_does_not_count() {
    let src = "\
fn f(a: &AtomicU32) {
    // SYNC: pairs with the load in g.
    a.store(1, Ordering::Relaxed);
    let y = 2;
    let z = 3;
    a.store(2, Ordering::Release);
}
";
    assert_eq!(unpaired(src), vec![6]);
}

#[test]
fn commented_orderings_pass() {
    let src = "\
fn f(a: &AtomicU32) -> u32 {
    // SYNC: pairs with the Release store in g.
    let v = a.load(Ordering::Acquire);
    a.store(0, Ordering::Relaxed);
    // SYNC: a long comment
    // over several lines
    // that goes on
    // and on.
    fence(Ordering::SeqCst);
    v
}
";
    assert_eq!(unpaired(src), Vec::<usize>::new());
}

#[test]
fn a_call_over_several_lines_is_one_statement() {
    let ok = "\
fn f(a: &AtomicU32) {
    // SYNC: pairs with the other claimant's CAS.
    let _ = a
        .compare_exchange(
            0,
            1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
}
";
    assert_eq!(unpaired(ok), Vec::<usize>::new());
    let bad = ok.replace("    // SYNC: pairs with the other claimant's CAS.\n", "");
    assert_eq!(unpaired(&bad), vec![6, 7]);
}

#[test]
fn test_code_and_comments_are_skipped_but_not_what_follows() {
    let src = "\
/// Loads with `Ordering::Acquire` (a doc comment, not code).
fn f() {}

#[cfg(test)]
mod tests {
    fn t(a: &AtomicU32) {
        let s = \"}\";
        a.store(1, Ordering::SeqCst);
    }
}

fn g(a: &AtomicU32) {
    a.store(1, Ordering::Release);
}
";
    assert_eq!(unpaired(src), vec![13]);
}

#[test]
fn imported_variants_are_refused() {
    assert_eq!(unpaired("use core::sync::atomic::Ordering::*;\n"), vec![1]);
    assert_eq!(unpaired("use Ordering::{Acquire, Release};\n"), vec![1]);
}
