//! The streamed body: exact bytes whatever the slice sizes, bounded memory for a 20 MiB file,
//! files that change after the check.

use std::io::Write;

use super::base64::tests::decode;
use super::testing::{drain, Handoff, TempDir, MAX_TOTAL};
use super::*;

/// Deterministic bytes that are not all alike (a linear congruential generator).
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

/// A body for `{"prompt":"{p}","attachments":{"p":"p.png"}}` with `bytes` as the file, and a
/// writer on the same file (its name is deleted by the check).
fn image_body(temp: &TempDir, bytes: &[u8]) -> (Body, std::fs::File) {
    temp.write("p.png", bytes);
    let writer = std::fs::OpenOptions::new()
        .append(true)
        .open(temp.path().join("p.png"))
        .unwrap();
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let handoff = Handoff::parse(
        r#"{"prompt":"see {p}","attachments":{"p":"p.png"}}"#,
        temp.path(),
    );
    let mut checked = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap();
    assert_eq!(checked.load(SLICE).unwrap(), Loading::Done);
    let (content, _) = checked.into_content(Flavour::OpenAi).unwrap();
    assert!(temp.listing().is_empty());
    let mut plan = BodyPlan::new();
    plan.push(br#"{"messages":[{"role":"user","content":"#);
    plan.push_content(&content);
    plan.push(b"}]}");
    (plan.finish(), writer)
}

const PREFIX: &str = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"see "},{"type":"image_url","image_url":{"url":"data:image/png;base64,"#;
const SUFFIX: &str = r#""}}]}]}"#;

#[test]
fn a_twenty_mebibyte_file_streams_intact_in_bounded_memory() {
    let temp = TempDir::new("big");
    let original = pattern(BINARY_MAX as usize);
    let (mut body, _writer) = image_body(&temp, &original);
    let encoded_len = (BINARY_MAX as usize).div_ceil(3) * 4;
    assert_eq!(
        body.len() as usize,
        PREFIX.len() + encoded_len + SUFFIX.len()
    );

    let mut out = Vec::with_capacity(body.len() as usize);
    let mut fills = 0;
    let mut most_held = 0;
    while !body.is_done() {
        let n = body.fill_vec(&mut out, usize::MAX).unwrap();
        assert!(n > 0 && n <= SLICE);
        most_held = most_held.max(body.held_bytes());
        fills += 1;
        assert!(fills < 1_000, "bounded");
    }
    assert!(most_held <= 128 * 1024, "held {most_held} bytes");
    assert!(
        body.held_bytes() <= 1024,
        "the read buffer is freed once done"
    );
    assert_eq!(out.len() as u64, body.len());
    assert!(out.starts_with(PREFIX.as_bytes()));
    assert!(out.ends_with(SUFFIX.as_bytes()));
    let base64 = &out[PREFIX.len()..out.len() - SUFFIX.len()];
    // Compare a chunk at a time, decoded by the tests' own decoder.
    for (i, chunk) in base64.chunks(64 * 1024).enumerate() {
        let start = i * 48 * 1024;
        let expected = &original[start..(start + 48 * 1024).min(original.len())];
        assert!(decode(chunk) == expected, "chunk {i} differs");
    }
}

#[test]
fn any_slice_size_gives_the_same_bytes_and_a_rewind_repeats_them() {
    let temp = TempDir::new("slices");
    let original = pattern(200_003);
    let (mut body, _writer) = image_body(&temp, &original);
    let whole = drain(&mut body).unwrap();
    assert_eq!(
        decode(&whole[PREFIX.len()..whole.len() - SUFFIX.len()]),
        original
    );
    for size in [1, 2, 3, 4, 5, 7, 1000, 65_537] {
        body.rewind();
        let mut out = Vec::new();
        let mut buf = vec![0u8; size];
        for _ in 0..1_000_000 {
            let n = body.fill(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == whole, "slices of {size}");
    }
}

#[test]
fn a_file_that_grows_or_shrinks_after_the_check_breaks_the_body() {
    for grow in [true, false] {
        let temp = TempDir::new("change");
        let (mut body, mut writer) = image_body(&temp, &pattern(100_000));
        let mut out = Vec::new();
        body.fill_vec(&mut out, 1000).unwrap();
        if grow {
            writer.write_all(b"more").unwrap();
        } else {
            writer.set_len(50_000).unwrap();
        }
        let error = (0..1000)
            .find_map(|_| body.fill_vec(&mut out, SLICE).err())
            .expect("the change is noticed");
        assert_eq!(error.error.status().code(), 500);
        assert_eq!(
            error.error.to_string(),
            "attachment \"p\" changed while it was being read"
        );
    }
}

#[test]
fn a_file_that_grows_just_at_its_end_is_noticed() {
    let temp = TempDir::new("grow-end");
    let (mut body, mut writer) = image_body(&temp, b"abc");
    let mut out = Vec::new();
    // Everything up to the file's base64, and the base64 itself.
    body.fill_vec(&mut out, PREFIX.len() + 4).unwrap();
    writer.write_all(b"d").unwrap();
    assert!(body.fill_vec(&mut out, SLICE).is_err());
}

#[test]
fn plans_count_their_length_and_take_serde_json() {
    let mut plan = BodyPlan::new();
    assert!(plan.is_empty());
    serde_json::to_writer(&mut plan, &serde_json::json!({"model": "m", "n": 1})).unwrap();
    plan.push_json_string("a\"b\n");
    assert_eq!(plan.len(), 27);
    let mut body = plan.finish();
    assert_eq!(
        drain(&mut body).unwrap(),
        br#"{"model":"m","n":1}"a\"b\n""#.to_vec()
    );
    let mut plain = Body::from_bytes(b"xyz");
    assert_eq!(plain.len(), 3);
    assert_eq!(plain.remaining(), 3);
    assert_eq!(drain(&mut plain).unwrap(), b"xyz".to_vec());
    assert_eq!(plain.remaining(), 0);
}
