//! The fuzz targets' checks, as a library the targets in `fuzz_targets/` call. The daemon's
//! `tests/fuzz_corpus.rs` compiles the same `checks` module, so every check runs on stable too.

pub mod checks;
