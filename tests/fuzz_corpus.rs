//! Replays the fuzz corpora on stable: every file under `fuzz/corpus/<target>/` (the committed
//! seeds and fixed crashes) and `fuzz/artifacts/<target>/` (crash files a local fuzzing run
//! left, never committed) goes through the same check its fuzz target runs, and every file
//! under `fuzz/findings/<target>/` (crashes whose bug is not fixed yet) must still fail it.
//! The checks are the fuzz crate's own `src/checks/`, compiled here as a module, so CI keeps
//! them without nightly or libFuzzer.

#[path = "../fuzz/src/checks/mod.rs"]
mod checks;

use std::collections::BTreeSet;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use checks::Check;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The subdirectories of `dir` by name, with the files in each; nothing when `dir` is missing.
fn files_by_target(dir: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut targets: Vec<(String, Vec<PathBuf>)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut files: Vec<PathBuf> = fs::read_dir(&path)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|file| file.is_file())
                .collect();
            files.sort();
            (name, files)
        })
        .collect();
    targets.sort();
    targets
}

fn check_of(target: &str) -> Option<Check> {
    checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
}

/// Runs every file under `dir/<target>/` through the check `check_of` gives for its target,
/// and fails naming each file whose check panicked.
fn replay(dir: &Path, check_of: fn(&str) -> Option<Check>) -> usize {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, files) in files_by_target(dir) {
        let check = check_of(&target).unwrap_or_else(|| {
            panic!(
                "{}/{target}/ has no check in fuzz/src/checks/mod.rs",
                dir.display()
            )
        });
        for file in files {
            let data = fs::read(&file).unwrap();
            replayed += 1;
            if panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus file(s) fail their fuzz check (the panic messages are above): {failures:#?}",
        failures.len()
    );
    replayed
}

#[test]
fn every_corpus_file_passes_its_targets_checks() {
    let replayed = replay(&fuzz_dir().join("corpus"), check_of);
    println!("replayed {replayed} corpus files");
    assert!(replayed >= checks::TARGETS.len(), "{replayed} files");
}

#[test]
fn every_crash_file_left_by_a_fuzzing_run_passes_too() {
    replay(&fuzz_dir().join("artifacts"), check_of);
}

/// A target needs its check, its `fuzz_targets/` file, its `[[bin]]` and a seeded corpus; the
/// four must agree, so that adding one is never half done.
#[test]
fn every_target_is_checked_built_and_seeded() {
    let checked: BTreeSet<String> = checks::TARGETS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        checked.len(),
        checks::TARGETS.len(),
        "a target is listed twice"
    );

    let sources: BTreeSet<String> = fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(sources, checked, "fuzz/fuzz_targets/*.rs");

    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins: BTreeSet<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| {
            bin.lines()
                .find_map(|line| line.trim().strip_prefix("name = "))
                .map(|name| name.trim_matches('"').to_string())
        })
        .collect();
    assert_eq!(bins, checked, "the [[bin]] entries of fuzz/Cargo.toml");

    let seeded: BTreeSet<String> = files_by_target(&fuzz_dir().join("corpus"))
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        seeded, checked,
        "non-empty fuzz/corpus/<target>/ directories"
    );
}

/// The replay fails on a file whose check panics, naming it, and on a directory that no
/// target checks.
#[test]
fn the_replay_names_what_fails() {
    fn fails_on_bad(data: &[u8]) {
        assert_ne!(data, b"bad");
    }
    fn only_picky(target: &str) -> Option<Check> {
        (target == "picky").then_some(fails_on_bad as Check)
    }
    let dir = std::env::temp_dir().join(format!("fuzz-replay-{}", std::process::id()));
    let picky = dir.join("picky");
    fs::create_dir_all(&picky).unwrap();
    fs::write(picky.join("good-input"), b"good").unwrap();
    fs::write(picky.join("bad-input"), b"bad").unwrap();
    let failed = panic::catch_unwind(|| replay(&dir, only_picky));
    fs::create_dir_all(dir.join("unchecked")).unwrap();
    let unchecked = panic::catch_unwind(|| replay(&dir, only_picky));
    fs::remove_dir_all(&dir).unwrap();

    let message = *failed.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("bad-input"), "{message}");
    assert!(!message.contains("good-input"), "{message}");
    let message = *unchecked.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("unchecked/ has no check"), "{message}");
}

/// `fuzz/findings/<target>/` holds minimised inputs that fail their check because of a bug not
/// fixed yet (each one is described in `fuzz/README.md`). They must keep failing: once one
/// passes, its bug is fixed and the file belongs in `fuzz/corpus/<target>/` as a regression
/// seed.
#[test]
fn every_open_finding_still_fails() {
    for (target, files) in files_by_target(&fuzz_dir().join("findings")) {
        let check =
            check_of(&target).unwrap_or_else(|| panic!("fuzz/findings/{target}/ has no check"));
        for file in files {
            let data = fs::read(&file).unwrap();
            assert!(
                panic::catch_unwind(|| check(&data)).is_err(),
                "{} passes its check now: move it to fuzz/corpus/{target}/ and mark the \
                 finding fixed in fuzz/README.md",
                file.display()
            );
        }
    }
}
