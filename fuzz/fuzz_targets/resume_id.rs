#![no_main]
// The checks are in src/checks/, shared with the replay test (tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| streaming_daemon_fuzz::checks::resume_id::check(data));
