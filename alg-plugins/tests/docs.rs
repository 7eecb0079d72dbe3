//! docs/alg.md's "Expectation classes" table says what the registry says: the same
//! classes, each with its ALG, its maximum per worker and its timeout.

use cgnat_alg::{plugin_of_class, CLASSES};

/// One row of the table: class, ALG, max per worker, timeout (seconds).
#[derive(Debug, PartialEq, Eq)]
struct Row {
    class: String,
    alg: String,
    max: usize,
    timeout_secs: u32,
}

/// The seconds a timeout cell starts with (`120 s`, `3600 s; ...`).
fn seconds(cell: &str) -> Option<u32> {
    let (n, rest) = cell.split_once(' ')?;
    (rest == "s" || rest.starts_with("s;") || rest.starts_with("s ")).then_some(())?;
    n.parse().ok()
}

/// The rows of the table under `## Expectation classes` in `doc`.
fn rows(doc: &str) -> Vec<Row> {
    let at = doc
        .find("\n## Expectation classes\n")
        .expect("docs/alg.md has no \"## Expectation classes\" section");
    let lines: Vec<&str> = doc[at..]
        .lines()
        .skip(2)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        lines.len() > 2
            && lines[0].starts_with("| class | ALG | max per worker | timeout |")
            && lines[1].starts_with("|---"),
        "the table's head changed: {lines:?}"
    );
    lines[2..]
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert!(cells.len() >= 4, "{l}");
            Row {
                class: cells[0].to_string(),
                alg: cells[1].to_string(),
                max: cells[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("max per worker of {l}")),
                timeout_secs: seconds(cells[3])
                    .unwrap_or_else(|| panic!("the timeout of {l} starts with no \"N s\"")),
            }
        })
        .collect()
}

#[test]
fn the_expectation_classes_table_of_docs_alg_md_is_the_registry() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/alg.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut doc_rows = rows(&doc);
    doc_rows.sort_by(|a, b| a.class.cmp(&b.class));
    let mut registry: Vec<Row> = CLASSES
        .iter()
        .map(|c| Row {
            class: c.name.to_string(),
            alg: plugin_of_class(c.id).unwrap().name.to_uppercase(),
            max: c.max,
            timeout_secs: c.timeout_secs,
        })
        .collect();
    registry.sort_by(|a, b| a.class.cmp(&b.class));
    assert_eq!(doc_rows, registry);
}

#[test]
fn a_timeout_cell_is_read_by_its_leading_seconds() {
    assert_eq!(seconds("120 s"), Some(120));
    assert_eq!(
        seconds("3600 s; a registration: its lifetime + 30 s"),
        Some(3600)
    );
    assert_eq!(seconds("the registration's lifetime + 30 s"), None);
    assert_eq!(seconds("300"), None);
}
