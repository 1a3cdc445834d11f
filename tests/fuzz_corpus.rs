//! The fuzz targets' corpus (`fuzz/corpus/<target>/`), replayed natively on every run of the
//! test command: each input once through its target's checks (`fuzz/checks.rs`), so that a
//! crash the fuzzer found and a fix made stays fixed. The fuzzing itself: `bash fuzz/run.sh`.

#[path = "../fuzz/checks.rs"]
mod checks;

#[test]
fn the_fuzz_corpus_replays_without_a_failure() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for target in checks::TARGETS {
        let dir = root.join(target);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| checks::run(target, &data));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            inputs += 1;
        }
        assert!(inputs > 0, "{target}: no corpus");
    }
}
