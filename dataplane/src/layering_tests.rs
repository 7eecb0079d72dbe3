//! The guide's layering, checked on the sources: no two modules import each other. The
//! ALG tag (`alg_tag.rs`) is below the stream engine's control (`alg.rs`) and the
//! contract path (`alg_contract.rs`); the expectation table (`nat/expect.rs`) is below
//! the NAT (`nat/mod.rs`);
//! the ALG stream engine (`alg_stream.rs`) and the port side (`side.rs`) are below the
//! pipeline (`pipeline.rs`), whose control lcore owns the engine.

/// The source of `path` (under `dataplane/src`), comments left out.
fn code(path: &str) -> String {
    let p = format!("{}/src/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines of `src` that name any of `paths`.
fn naming<'a>(src: &'a str, paths: &[&str]) -> Vec<&'a str> {
    src.lines()
        .filter(|l| paths.iter().any(|p| l.contains(p)))
        .collect()
}

#[test]
fn the_alg_modules_do_not_import_each_other() {
    // `crate::alg::` and `crate::alg_contract` name them; `crate::alg_tag` is neither.
    let alg = ["crate::alg::", "crate::alg::{", "crate::alg;"];
    assert_eq!(naming(&code("alg_contract.rs"), &alg), Vec::<&str>::new());
    assert_eq!(
        naming(
            &code("alg_tag.rs"),
            &[&alg[..], &["crate::alg_contract"]].concat()
        ),
        Vec::<&str>::new()
    );
}

#[test]
fn the_contract_path_imports_no_alg_and_not_the_pipeline() {
    // The generic side of the ALG contract names no ALG's module, nor the pipeline
    // (which calls it) nor the stream engine.
    let above = [
        "crate::alg::",
        "crate::alg::{",
        "crate::alg;",
        "crate::pipeline",
        "crate::alg_stream",
    ];
    assert_eq!(naming(&code("alg_contract.rs"), &above), Vec::<&str>::new());
    // It is the pipeline's: the pipeline names it.
    assert!(!naming(&code("pipeline.rs"), &["crate::alg_contract"]).is_empty());
}

#[test]
fn the_expectation_table_does_not_import_the_nat() {
    let src = code("nat/expect.rs");
    let uses: Vec<&str> = naming(&src, &["super::", "crate::nat"])
        .into_iter()
        .filter(|l| !l.contains("super::key::Key"))
        .collect();
    assert_eq!(uses, Vec::<&str>::new());
}

#[test]
fn the_alg_stream_engine_does_not_import_the_pipeline() {
    let pipeline = ["crate::pipeline", "super::"];
    assert_eq!(
        naming(&code("alg_stream.rs"), &pipeline),
        Vec::<&str>::new()
    );
    assert_eq!(naming(&code("side.rs"), &pipeline), Vec::<&str>::new());
    // The engine is the pipeline's: the pipeline names it (it is not a stray module).
    assert!(!naming(&code("pipeline.rs"), &["crate::alg_stream"]).is_empty());
}

#[test]
fn the_gre_call_table_does_not_import_the_nat() {
    // Its unit tests' `use super::*` is the table itself.
    let src = code("nat/gre.rs");
    let uses: Vec<&str> = naming(&src, &["super::", "crate::"])
        .into_iter()
        .filter(|l| l.trim() != "use super::*;")
        .collect();
    assert_eq!(uses, Vec::<&str>::new());
    // It is the NAT's: the NAT names it (it is not a stray module).
    assert!(!naming(&code("nat/mod.rs"), &["gre::"]).is_empty());
}
