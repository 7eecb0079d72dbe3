//! What the end-to-end tests share: they need root for network namespaces.
#![allow(dead_code)]

use std::process::Command;

/// True when the test must be skipped: not root, and CGNAT_SKIP_NETNS says so. Not
/// root without it fails the test with a clear message (CI runs as root).
pub fn skip_without_root(what: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if root {
        return false;
    }
    assert!(
        std::env::var_os("CGNAT_SKIP_NETNS").is_some(),
        "{what} needs root (network namespaces); set CGNAT_SKIP_NETNS=1 to skip it"
    );
    eprintln!("skipped: not root and CGNAT_SKIP_NETNS is set");
    true
}

/// Runs `bash scripts/SCRIPT CGNAT_BINARY target/WORK`, shows its output, and asserts
/// that it passed: exit status 0 and `pass` in what it printed.
pub fn run_script(script: &str, work: &str, pass: &str) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join(work);
    let _ = std::fs::remove_dir_all(&work);
    let out = Command::new("bash")
        .arg(root.join("scripts").join(script))
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "scripts/{script} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(pass),
        "scripts/{script} did not print {pass}"
    );
}

/// One scenario's outcome in a bed's output: passed or not, required or not, and the
/// bed's detail text.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub required: bool,
    pub detail: String,
}

/// The `PREFIX name=N ok=B [required=R] detail=D` lines of a bed's output, by name.
pub fn parse_results(stdout: &str, prefix: &str) -> std::collections::BTreeMap<String, Outcome> {
    let mut out = std::collections::BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix(prefix) else {
            continue;
        };
        let (head, detail) = rest.split_once(" detail=").unwrap_or((rest, ""));
        let (mut name, mut ok, mut required) = (None, None, false);
        for f in head.split_whitespace() {
            if let Some(n) = f.strip_prefix("name=") {
                name = Some(n.to_string());
            } else if let Some(v) = f.strip_prefix("ok=") {
                ok = Some(v == "1");
            } else if let Some(v) = f.strip_prefix("required=") {
                required = v == "1";
            }
        }
        if let (Some(name), Some(ok)) = (name, ok) {
            let detail = detail.to_string();
            out.insert(
                name,
                Outcome {
                    ok,
                    required,
                    detail,
                },
            );
        }
    }
    out
}

/// The value of `key=` in a detail text (up to the next space).
pub fn field<'a>(detail: &'a str, key: &str) -> Option<&'a str> {
    detail
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}
