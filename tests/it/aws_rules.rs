//! `docs/aws-rules.md` lists each AWS rule the memory fake and the EC2-like
//! layer enforce, with the tests that meet it. Such a table is only worth
//! reading while it is true: this fails when a row names no test, or a test
//! (`path::name`) whose file is gone or no longer holds that test function (it
//! was renamed, moved or deleted), so the table follows the code.

use std::path::Path;

const DOC: &str = "docs/aws-rules.md";

/// Each row of the rules table: its rule and the `path::name` tests it names
/// (the backticked texts of its `tests` column).
fn rows(doc: &str) -> Vec<(String, Vec<String>)> {
    let mut table = doc
        .lines()
        .skip_while(|l| !(l.starts_with('|') && l.contains("| tests |")));
    let header = table.next().expect("a table with a `tests` column");
    let column = header
        .split('|')
        .position(|cell| cell.trim() == "tests")
        .expect("the `tests` column");
    table
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let tests = cells.get(column).copied().unwrap_or_default();
            let named = tests.split('`').skip(1).step_by(2).map(str::to_owned);
            (cells[1].trim().to_owned(), named.collect())
        })
        .collect()
}

/// Whether `source` has a test function `name`: `fn name(` under a
/// `#[test]` or `#[tokio::test...]` attribute.
fn has_test(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let start = format!("fn {name}(");
    lines.iter().enumerate().any(|(i, line)| {
        line.contains(&start)
            && lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("#["))
                .any(|l| l.contains("test"))
    })
}

#[test]
fn every_test_the_rules_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join(DOC)).expect("docs/aws-rules.md");
    let rows = rows(&doc);
    assert!(!rows.is_empty(), "no rows in the rules table of {DOC}");
    let mut wrong = Vec::new();
    for (rule, tests) in &rows {
        if tests.is_empty() {
            wrong.push(format!("names no test: {rule}"));
        }
        for test in tests {
            let Some((path, name)) = test.rsplit_once("::") else {
                wrong.push(format!("{test}: not path::name"));
                continue;
            };
            match std::fs::read_to_string(root.join(path)) {
                Ok(source) if has_test(&source, name) => {}
                Ok(_) => wrong.push(format!("{test}: {path} has no test fn {name}")),
                Err(e) => wrong.push(format!("{test}: {path}: {e}")),
            }
        }
    }
    assert!(wrong.is_empty(), "{DOC}:\n{}", wrong.join("\n"));
}
