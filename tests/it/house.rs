//! The house rules that keep `src/` readable, checked instead of remembered:
//! no function longer than 60 lines (from its `fn` line to its closing brace,
//! outside `#[cfg(test)]` modules) and no file longer than 800 lines. A long
//! function usually does two of look, plan, execute and report; a long file
//! usually holds two ideas. The check relies on rustfmt's layout (which
//! `make test` enforces first): a body closes with a `}` at the indentation
//! of its `fn` line.

use std::path::{Path, PathBuf};

const FN_LINES: usize = 60;
const FILE_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The index of the line that closes the block opened at `start`.
fn closing(lines: &[&str], start: usize, indent: &str) -> Option<usize> {
    let close = format!("{indent}}}");
    (start + 1..lines.len()).find(|&j| lines[j].trim_end() == close)
}

/// The name of the function a line starts, if it starts one.
fn fn_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "fn" => return words.next()?.split(['(', '<']).next(),
            "pub" | "const" | "async" | "unsafe" => {}
            w if w.starts_with("pub(") => {}
            _ => return None,
        }
    }
    None
}

fn is_test_module(attribute: &str, next: &str) -> bool {
    let item = next.trim_start().trim_start_matches("pub ");
    attribute.trim() == "#[cfg(test)]" && item.starts_with("mod ") && item.trim_end().ends_with('{')
}

/// `(line, name, length)` of each function in `text` longer than `limit`.
fn long_functions(text: &str, limit: usize) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if i + 1 < lines.len() && is_test_module(lines[i], lines[i + 1]) {
            i = closing(&lines, i + 1, indent_of(lines[i + 1])).unwrap_or(lines.len()) + 1;
            continue;
        }
        if let Some(name) = fn_name(lines[i]) {
            // The signature may span lines; a `;` before any `{` is a declaration.
            let body = (i..lines.len())
                .find(|&j| lines[j].contains('{') || lines[j].trim_end().ends_with(';'))
                .filter(|&j| lines[j].contains('{'));
            let end = body.and_then(|j| {
                match lines[j].matches('{').count() == lines[j].matches('}').count() {
                    true => Some(j),
                    false => closing(&lines, j, indent_of(lines[i])),
                }
            });
            if let Some(end) = end.filter(|end| end - i + 1 > limit) {
                found.push((i + 1, name.to_owned(), end - i + 1));
            }
        }
        i += 1;
    }
    found
}

#[test]
fn no_function_in_src_is_longer_than_60_lines_and_no_file_longer_than_800() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut broken = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("a source file");
        let shown = path.strip_prefix(root).unwrap_or(path).display();
        let n = text.lines().count();
        if n > FILE_LINES {
            broken.push(format!("{shown}: {n} lines (limit {FILE_LINES})"));
        }
        for (line, name, length) in long_functions(&text, FN_LINES) {
            broken.push(format!(
                "{shown}:{line}: fn {name} is {length} lines (limit {FN_LINES})"
            ));
        }
    }
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    assert!(
        broken.is_empty(),
        "over the house limits:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_length_check_sees_long_functions_and_skips_test_modules() {
    let body = "    let x = 1;\n".repeat(61);
    let text = format!(
        "pub async fn long(\n    a: u8,\n) -> u8 {{\n{body}}}\n\nfn short() {{}}\n\n\
         #[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{body}    }}\n}}\n\n\
         trait T {{\n    fn declared(&self);\n}}\n"
    );
    let found = long_functions(&text, FN_LINES);
    assert_eq!(found, vec![(1, "long".to_owned(), 65)]);
}
