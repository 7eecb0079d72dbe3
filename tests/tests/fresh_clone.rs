//! The repository stands on its own: a clone of HEAD into an empty temporary folder (no
//! sibling folders: nothing from outside the repository is reachable) builds and passes the
//! test kit's tests and the replays of the real captures there. A future test, seed or
//! script that reaches outside the repository fails here.

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    // The clone builds into its own target folder and tests its own binary.
    for var in [
        "CARGO_TARGET_DIR",
        "CGNAT_BIN",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?} in {}: {e}", dir.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {args:?} failed in the fresh clone {}:\n{text}",
        dir.display()
    );
    text
}

/// (passed, failed) summed over the `test result:` lines of cargo test's output.
fn counts(output: &str) -> (u32, u32) {
    let mut passed = 0;
    let mut failed = 0;
    for line in output.lines().filter(|l| l.starts_with("test result:")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            let n: u32 = w[0].parse().unwrap_or(0);
            if w[1].starts_with("passed") {
                passed += n;
            } else if w[1].starts_with("failed") {
                failed += n;
            }
        }
    }
    (passed, failed)
}

#[test]
fn a_fresh_clone_with_nothing_beside_it_passes_the_capture_and_test_kit_tests() {
    let workspace = cgnat_testkit::workspace();
    // An empty folder of its own: the clone's parent holds the clone and nothing else.
    let parent = cgnat_testkit::temp_dir("fresh-clone").unwrap();
    let clone = parent.join("cgnat");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        &parent,
        "git",
        &[
            "clone",
            "--quiet",
            "--no-hardlinks",
            workspace.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let siblings: Vec<_> = std::fs::read_dir(&parent).unwrap().collect();
    assert_eq!(
        siblings.len(),
        1,
        "the clone has company in {}",
        parent.display()
    );

    let kit = run(
        &clone,
        &cargo,
        &[
            "test",
            "-q",
            "-p",
            "cgnat-tests",
            "--lib",
            "--test",
            "ftp_captures",
        ],
    );
    let replay = run(
        &clone,
        &cargo,
        &[
            "test",
            "-q",
            "-p",
            "cgnat-dataplane",
            "--test",
            "replay_captures",
        ],
    );
    let (kit_passed, kit_failed) = counts(&kit);
    let (replay_passed, replay_failed) = counts(&replay);
    // Printed without cargo's own `test result:` words, so the suite's total counts
    // this test once.
    println!("fresh clone: test kit {kit_passed} passed, {kit_failed} failed; replays {replay_passed} passed, {replay_failed} failed");
    assert_eq!((kit_failed, replay_failed), (0, 0));
    assert!(kit_passed >= 30, "test kit: {kit_passed} tests ran");
    assert!(replay_passed >= 9, "replays: {replay_passed} tests ran");
    std::fs::remove_dir_all(&parent).unwrap();
}
