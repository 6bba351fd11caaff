//! The rejection vectors AE1–AE16 (SPEC Appendix A.2), the order of checks, and deletion on
//! every path.

use super::testing::{load_all, run, run_handoff, run_with, Handoff, TempDir, MAX_TOTAL};
use super::*;
use std::time::Instant;

/// Runs a handoff that must be refused; returns the refusal and what is left in `D`.
fn refused(json: &str, files: &[(&str, &[u8])]) -> (Refusal, Vec<String>) {
    let (result, left) = run(json, files, Flavour::OpenAi);
    match result {
        Ok(outcome) => panic!("accepted: {:?}", outcome.content),
        Err(refusal) => (refusal, left),
    }
}

/// The client's status and message.
fn answer(refusal: &Refusal) -> (u16, String) {
    (refusal.error.status().code(), refusal.error.to_string())
}

#[test]
fn ae1_a_name_that_climbs_out_is_refused_and_the_other_files_deleted() {
    let outer = TempDir::new("ae1");
    outer.write("secret.txt", b"s");
    outer.write("data/b.txt", b"b");
    let data = outer.path().join("data");
    let (dir, _) = DataDir::open(&data).unwrap();
    let handoff = Handoff::parse(
        r#"{"prompt":"x {a}","attachments":{"a":"../secret.txt","b":"b.txt"}}"#,
        &data,
    );
    let refusal = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap_err();
    assert_eq!(
        refusal.error,
        AttachmentError::BadName(FileLabel::Attachment("a".into()))
    );
    assert_eq!(refusal.error.status().code(), 400);
    assert_eq!(
        refusal.error.rejection(),
        crate::end::Rejection::BadAttachment
    );
    let message = refusal.error.to_string();
    assert!(
        !message.contains("secret"),
        "no file name for the client: {message}"
    );
    assert!(refusal.log_detail().contains("../secret.txt"));
    assert_eq!(outer.listing(), ["data/", "secret.txt"]);
}

#[test]
fn ae2_names_that_are_not_plain_relative_names() {
    for name in [".", "", "/etc/passwd", "./b.txt", "x/../b.txt"] {
        let json = format!(
            r#"{{"prompt":"{{a}}","attachments":{{"a":{}}}}}"#,
            serde_json::to_string(name).unwrap()
        );
        let (refusal, left) = refused(&json, &[("b.txt", b"b")]);
        assert_eq!(refusal.error.status().code(), 400, "{name:?}");
        assert!(
            matches!(refusal.error, AttachmentError::BadName(_)),
            "{name:?}"
        );
        assert_eq!(left, ["b.txt"], "{name:?}");
    }
}

#[test]
fn ae3_an_unknown_extension_is_refused_and_deleted() {
    let (refusal, left) = refused(
        r#"{"prompt":"{a}","attachments":{"a":"a.bmp"}}"#,
        &[("a.bmp", b"BM")],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::UnknownType(FileLabel::Attachment("a".into()))
    );
    assert_eq!(refusal.error.status().code(), 400);
    assert!(left.is_empty());
}

#[test]
fn ae4_a_text_file_over_one_mebibyte() {
    let json = r#"{"prompt":"{a}","attachments":{"a":"a.txt"}}"#;
    let over = vec![b'x'; 1_048_577];
    let (refusal, left) = refused(json, &[("a.txt", &over)]);
    assert_eq!(
        answer(&refusal),
        (
            413,
            "attachment \"a\" is larger than 1048576 bytes".to_string()
        )
    );
    assert!(left.is_empty());

    let exact = vec![b'x'; 1_048_576];
    let (result, left) = run(json, &[("a.txt", &exact)], Flavour::OpenAi);
    let content = result.unwrap().content.unwrap();
    assert_eq!(content.len(), 1_048_578);
    assert!(left.is_empty());
}

#[test]
fn ae5_a_binary_file_over_twenty_mebibytes() {
    let json = r#"{"prompt":"{a}","attachments":{"a":"big.png"}}"#;
    for (size, accepted) in [(20_971_521, false), (20_971_520, true)] {
        let temp = TempDir::new("ae5");
        temp.sized("big.png", size);
        let (dir, _) = DataDir::open(temp.path()).unwrap();
        let handoff = Handoff::parse(json, temp.path());
        let result = handoff.check(DirAccess::Open(&dir), MAX_TOTAL);
        match result {
            Ok(checked) => {
                assert!(accepted);
                assert_eq!(checked.count(), 1);
            }
            Err(refusal) => {
                assert!(!accepted);
                assert_eq!(refusal.error.status().code(), 413);
            }
        }
        assert!(temp.listing().is_empty());
    }
}

#[test]
fn ae6_files_over_max_attachment_bytes() {
    let temp = TempDir::new("ae6");
    temp.sized("a.png", 17 << 20);
    temp.sized("b.png", 17 << 20);
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let handoff = Handoff::parse(
        r#"{"prompt":"x","attachments":{"a":"a.png","b":"b.png"}}"#,
        temp.path(),
    );
    let refusal = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap_err();
    assert_eq!(
        answer(&refusal),
        (
            413,
            "the attachments and images add up to more than 33554432 bytes".into()
        )
    );
    assert!(temp.listing().is_empty());
}

#[test]
fn ae7_more_than_thirty_two_files() {
    let temp = TempDir::new("ae7");
    let mut attachments = Vec::new();
    for i in 0..33 {
        temp.write(&format!("f{i}.txt"), b"x");
        attachments.push(format!(r#""r{i}":"f{i}.txt""#));
    }
    let json = format!(
        r#"{{"prompt":"x","attachments":{{{}}}}}"#,
        attachments.join(",")
    );
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let refusal = Handoff::parse(&json, temp.path())
        .check(DirAccess::Open(&dir), MAX_TOTAL)
        .unwrap_err();
    assert_eq!(refusal.error, AttachmentError::TooManyFiles { count: 33 });
    assert_eq!(refusal.error.status().code(), 413);
    assert!(temp.listing().is_empty());

    // 32 is fine.
    for i in 0..32 {
        temp.write(&format!("f{i}.txt"), b"x");
    }
    let json = format!(
        r#"{{"prompt":"x","attachments":{{{}}}}}"#,
        attachments[..32].join(",")
    );
    let checked = Handoff::parse(&json, temp.path())
        .check(DirAccess::Open(&dir), MAX_TOTAL)
        .unwrap();
    assert_eq!(checked.count(), 32);
}

#[test]
fn ae8_text_that_is_not_utf8_is_refused_when_read() {
    let (refusal, left) = refused(
        r#"{"prompt":"{a}","attachments":{"a":"a.txt","b":"b.txt"}}"#,
        &[("a.txt", b"a\xff"), ("b.txt", b"b")],
    );
    assert_eq!(
        answer(&refusal),
        (400, "attachment \"a\" is not valid UTF-8 text".into())
    );
    assert!(left.is_empty());
}

#[test]
fn ae9_an_empty_type_override() {
    let (refusal, left) = refused(
        r#"{"prompt":"{a}","attachments":{"a":"a.bin"},"attachment_types":{"a":" ; x"}}"#,
        &[("a.bin", b"hello")],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::EmptyType(FileLabel::Attachment("a".into()))
    );
    assert_eq!(refusal.error.status().code(), 400);
    assert!(left.is_empty());
}

#[test]
fn ae10_a_symlink_is_refused_unread_and_left_with_its_target() {
    for method in [Method::Openat2, Method::Walk] {
        for target in ["/etc/hostname", "t.png"] {
            let temp = TempDir::new("ae10");
            temp.write("t.png", b"\x89PNG");
            std::os::unix::fs::symlink(target, temp.path().join("link.txt")).unwrap();
            let (dir, _) = DataDir::open_with(temp.path(), Some(method)).unwrap();
            let handoff = Handoff::parse(
                r#"{"prompt":"{a}","attachments":{"a":"link.txt"}}"#,
                temp.path(),
            );
            let refusal = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap_err();
            assert_eq!(
                answer(&refusal),
                (
                    400,
                    "attachment \"a\" is a symbolic link, which is not accepted".into()
                ),
                "{method:?} {target}"
            );
            assert_eq!(temp.listing(), ["link.txt", "t.png"]);
        }
    }
}

#[test]
fn a_symlinked_directory_in_the_name_is_refused() {
    for method in [Method::Openat2, Method::Walk] {
        let temp = TempDir::new("linked-dir");
        temp.write("real/a.txt", b"a");
        std::os::unix::fs::symlink("real", temp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", temp.path().join("etc")).unwrap();
        let (dir, _) = DataDir::open_with(temp.path(), Some(method)).unwrap();
        for name in ["sub/a.txt", "etc/hostname"] {
            let json = format!(r#"{{"prompt":"x","attachments":{{"a":"{name}"}}}}"#);
            let refusal = Handoff::parse(&json, temp.path())
                .check(DirAccess::Open(&dir), MAX_TOTAL)
                .unwrap_err();
            assert!(
                matches!(refusal.error, AttachmentError::Symlink(_)),
                "{method:?} {name}"
            );
        }
        assert_eq!(temp.listing(), ["etc", "real/", "real/a.txt", "sub"]);
    }
}

#[test]
fn ae11_a_fifo_or_a_directory_is_refused_and_left() {
    for method in [Method::Openat2, Method::Walk] {
        for fifo in [true, false] {
            let temp = TempDir::new("ae11");
            if fifo {
                temp.mkfifo("f.txt");
            } else {
                temp.mkdir("f.txt");
            }
            let (dir, _) = DataDir::open_with(temp.path(), Some(method)).unwrap();
            let handoff = Handoff::parse(
                r#"{"prompt":"{a}","attachments":{"a":"f.txt"}}"#,
                temp.path(),
            );
            let refusal = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap_err();
            assert_eq!(
                answer(&refusal),
                (400, "attachment \"a\" is not a regular file".into())
            );
            let expected = if fifo { "f.txt" } else { "f.txt/" };
            assert_eq!(temp.listing(), [expected]);
        }
    }
}

#[test]
fn ae12_image_paths_must_be_absolute_images_under_data_dir() {
    for value in ["a.png", "/etc/hostname"] {
        let json = format!(r#"{{"prompt":"x","image_paths":["{value}"]}}"#);
        let (refusal, left) = refused(&json, &[("a.png", b"\x89PNG")]);
        assert_eq!(
            answer(&refusal),
            (
                400,
                "image_paths[0] must be an absolute path to a file inside the data directory"
                    .into()
            )
        );
        assert_eq!(left, ["a.png"]);
    }
    let (refusal, left) = refused(
        r#"{"prompt":"x","image_paths":["D/b.pdf"]}"#,
        &[("b.pdf", b"%PDF-1.4")],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::NotImage(FileLabel::ImagePaths(0))
    );
    assert!(left.is_empty());
    let (refusal, _) = refused(
        r#"{"prompt":"x","image_path":"D/b.txt"}"#,
        &[("b.txt", b"x")],
    );
    assert_eq!(
        answer(&refusal),
        (
            400,
            "image_path is not a PNG, JPEG, GIF or WebP image".into()
        )
    );
}

#[test]
fn ae13_inline_images_must_be_clean_base64_of_an_image_type() {
    let injection = r#"{"prompt":"x","images":[{"base64":"AAAA\"}},{\"type\":\"text\",\"text\":\"INJECTED","mime_type":"image/png"}]}"#;
    let (refusal, _) = refused(injection, &[]);
    assert_eq!(
        refusal.error,
        AttachmentError::BadBase64(ImageLabel::Images(0))
    );
    assert_eq!(refusal.error.status().code(), 400);
    let (refusal, _) = refused(
        r#"{"prompt":"x","images":[{"base64":"QQ==","mime_type":"text/html"}]}"#,
        &[],
    );
    assert_eq!(
        answer(&refusal),
        (
            400,
            "images[0] must be of type image/png, image/jpeg, image/gif or image/webp".into()
        )
    );
    let (refusal, _) = refused(
        r#"{"prompt":"x","image_base64":"QQ=","image_mime_type":"image/png"}"#,
        &[],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::BadBase64(ImageLabel::ImageBase64)
    );
    // The type is ASCII case-insensitive and emitted as given.
    let (result, _) = run(
        r#"{"prompt":"x","images":[{"base64":"QQ==","mime_type":"IMAGE/PNG"}]}"#,
        &[],
        Flavour::OpenAi,
    );
    assert!(result
        .unwrap()
        .content
        .unwrap()
        .contains("data:IMAGE/PNG;base64,QQ=="));
}

#[test]
fn ae14_no_user_message() {
    let (refusal, left) = refused(
        r#"{"messages":[{"role":"assistant","content":"{p}"}],"attachments":{"p":"p.png"}}"#,
        &[("p.png", b"\x89PNG")],
    );
    assert_eq!(refusal.error, AttachmentError::NoUserMessage);
    assert_eq!(refusal.error.status().code(), 400);
    assert!(left.is_empty());
}

#[test]
fn a_target_that_is_already_a_parts_array() {
    let temp = TempDir::new("parts");
    temp.write("p.png", b"\x89PNG");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let mut handoff = Handoff::parse(r#"{"prompt":"","attachments":{"p":"p.png"}}"#, temp.path());
    handoff.messages = vec![("user".into(), None)];
    let refusal = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap_err();
    assert_eq!(refusal.error, AttachmentError::TargetIsParts);
    assert!(temp.listing().is_empty());
}

#[test]
fn ae15_files_off() {
    let handoff = Handoff::parse(
        r#"{"prompt":"{a}","attachments":{"a":"a.txt"}}"#,
        std::path::Path::new("/nonexistent"),
    );
    let refusal = handoff.check(DirAccess::Off, MAX_TOTAL).unwrap_err();
    assert_eq!(
        answer(&refusal),
        (400, "this server does not accept attachment files".into())
    );
    // Inline images need no directory.
    let inline = Handoff::parse(
        r#"{"prompt":"x","images":[{"base64":"QQ=="}]}"#,
        std::path::Path::new("/nonexistent"),
    );
    assert!(inline.check(DirAccess::Off, MAX_TOTAL).is_ok());
}

#[test]
fn a_directory_not_open_yet_is_500() {
    let handoff = Handoff::parse(
        r#"{"prompt":"x","image_path":"/run/handoff-data/a.png"}"#,
        std::path::Path::new("/nonexistent"),
    );
    let refusal = handoff
        .check(DirAccess::Unavailable, MAX_TOTAL)
        .unwrap_err();
    assert_eq!(refusal.error, AttachmentError::DirUnavailable);
    assert_eq!(refusal.error.status().code(), 500);
}

#[test]
fn ae16_discard_deletes_every_named_file_for_other_refusals() {
    let temp = TempDir::new("ae16");
    temp.write("a.txt", b"a");
    temp.write("i.png", b"i");
    temp.write("one.txt", b"1");
    temp.mkfifo("fifo.txt");
    std::os::unix::fs::symlink("/etc/hostname", temp.path().join("link.txt")).unwrap();
    let (mut slot, _) = DataDirSlot::open(Some(temp.path()), Instant::now());
    let mut handoff = Handoff::parse(
        r#"{"prompt":"hi","image_paths":["D/i.png","D/../x.png"],"image_path":"D/missing.png"}"#,
        temp.path(),
    );
    handoff.request.attachments = vec![
        ("a".into(), "one.txt".into()),
        ("a".into(), "a.txt".into()),
        ("b".into(), "fifo.txt".into()),
        ("c".into(), "link.txt".into()),
        ("d".into(), "../a.txt".into()),
    ];
    assert!(slot.retry(Instant::now()).is_none());
    let warnings = discard(&handoff.request, slot.access());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(temp.listing(), ["fifo.txt", "link.txt"]);
    // Nothing can be deleted without the directory, and nothing fails.
    assert!(discard(&handoff.request, DirAccess::Off).is_empty());
}

#[test]
fn names_are_all_checked_before_any_file() {
    // `a` sorts first and is over its limit, but `b`'s name is checked before any file.
    let (refusal, left) = refused(
        r#"{"prompt":"x","attachments":{"a":"a.txt","b":"b/../c.txt"}}"#,
        &[("a.txt", &vec![b'x'; 1_048_577])],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::BadName(FileLabel::Attachment("b".into()))
    );
    assert!(left.is_empty());
}

#[test]
fn files_are_checked_in_ref_order_then_image_paths_then_image_path() {
    // `a` (413) sorts before `b` (400): `a` decides.
    let (refusal, left) = refused(
        r#"{"prompt":"x","attachments":{"b":"b.bmp","a":"a.txt"},"image_path":"D/z.pdf"}"#,
        &[
            ("a.txt", &vec![b'x'; 1_048_577]),
            ("b.bmp", b"BM"),
            ("z.pdf", b"%"),
        ],
    );
    assert_eq!(refusal.error.status().code(), 413);
    assert!(
        left.is_empty(),
        "every file deleted after the failure: {left:?}"
    );

    // Attachments pass; image_paths[0] fails before image_path.
    let (refusal, left) = refused(
        r#"{"prompt":"x","attachments":{"a":"a.txt"},"image_paths":["D/p.pdf"],"image_path":"D/q.bmp"}"#,
        &[("a.txt", b"a"), ("p.pdf", b"%"), ("q.bmp", b"BM")],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::NotImage(FileLabel::ImagePaths(0))
    );
    assert!(left.is_empty());
}

#[test]
fn checks_before_the_files_come_first() {
    // An inline image fails; the files named are still deleted.
    let (refusal, left) = refused(
        r#"{"prompt":"x","images":[{"base64":"QQ"}],"attachments":{"a":"a.png"}}"#,
        &[("a.png", b"\x89PNG")],
    );
    assert_eq!(
        refusal.error,
        AttachmentError::BadBase64(ImageLabel::Images(0))
    );
    assert!(left.is_empty());

    // Inline image bytes count toward the total.
    let temp = TempDir::new("inline-total");
    temp.write("a.png", b"12345");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let handoff = Handoff::parse(
        r#"{"prompt":"x","images":[{"base64":"QUJD"}],"attachments":{"a":"a.png"}}"#,
        temp.path(),
    );
    let refusal = handoff.check(DirAccess::Open(&dir), 7).unwrap_err();
    assert_eq!(refusal.error, AttachmentError::OverTotal { limit: 7 });
    assert!(temp.listing().is_empty());
    temp.write("a.png", b"12345");
    assert!(handoff.check(DirAccess::Open(&dir), 8).is_ok());
}

#[test]
fn after_a_symlink_or_fifo_the_other_files_are_still_deleted() {
    for method in [Method::Openat2, Method::Walk] {
        let temp = TempDir::new("after-link");
        temp.write("z.txt", b"z");
        temp.write("sub/y.png", b"y");
        temp.mkfifo("f.txt");
        std::os::unix::fs::symlink("z.txt", temp.path().join("l.txt")).unwrap();
        let (dir, _) = DataDir::open_with(temp.path(), Some(method)).unwrap();
        let handoff = Handoff::parse(
            r#"{"prompt":"x","attachments":{"a":"l.txt","b":"f.txt","c":"z.txt"},"image_path":"D/sub/y.png"}"#,
            temp.path(),
        );
        let refusal = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap_err();
        assert_eq!(
            refusal.error,
            AttachmentError::Symlink(FileLabel::Attachment("a".into()))
        );
        assert_eq!(temp.listing(), ["f.txt", "l.txt", "sub/"], "{method:?}");
    }
}

#[test]
fn a_shadowed_ref_is_deleted_but_never_decides() {
    let temp = TempDir::new("shadowed");
    temp.write("two.txt", b"TWO");
    temp.mkfifo("fifo.txt");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let mut handoff = Handoff::parse(r#"{"prompt":"{a}"}"#, temp.path());
    handoff.request.attachments = vec![
        ("a".into(), "fifo.txt".into()),
        ("a".into(), "two.txt".into()),
    ];
    let outcome = run_handoff(&handoff, &dir, Flavour::OpenAi).unwrap();
    assert_eq!(outcome.content.as_deref(), Some(r#""TWO""#));
    assert_eq!(temp.listing(), ["fifo.txt"]);
}

#[test]
fn the_walk_gives_the_same_content() {
    let (result, left) = run_with(
        r#"{"prompt":"{n} {p}","attachments":{"n":"sub/n.txt","p":"sub/deeper/p.png"}}"#,
        &[("sub/n.txt", b"N"), ("sub/deeper/p.png", b"\x89PNG")],
        Flavour::OpenAi,
        Method::Walk,
    );
    assert!(result
        .unwrap()
        .content
        .unwrap()
        .starts_with(r#"[{"type":"text","text":"N "},"#));
    assert_eq!(left, ["sub/", "sub/deeper/"]);
}

#[test]
fn a_text_file_that_changes_size_after_the_check_is_500() {
    for grow in [true, false] {
        let temp = TempDir::new("text-change");
        temp.write("a.txt", b"hello");
        // Another handle on the same file: the name is gone after the check, the file is not.
        let writer = std::fs::OpenOptions::new()
            .append(true)
            .open(temp.path().join("a.txt"))
            .unwrap();
        let (dir, _) = DataDir::open(temp.path()).unwrap();
        let handoff = Handoff::parse(
            r#"{"prompt":"{a}","attachments":{"a":"a.txt"}}"#,
            temp.path(),
        );
        let mut checked = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap();
        if grow {
            use std::io::Write;
            (&writer).write_all(b" world").unwrap();
        } else {
            writer.set_len(2).unwrap();
        }
        let refusal = load_all(&mut checked).unwrap_err();
        assert_eq!(
            answer(&refusal),
            (
                500,
                "attachment \"a\" changed while it was being read".into()
            )
        );
    }
}

#[test]
fn text_is_loaded_a_budget_at_a_time() {
    let temp = TempDir::new("budget");
    temp.write("a.txt", b"0123456789");
    temp.write("b.txt", b"abcdef");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let handoff = Handoff::parse(
        r#"{"prompt":"","attachments":{"a":"a.txt","b":"b.txt"}}"#,
        temp.path(),
    );
    let mut checked = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap();
    let mut turns = 0;
    while checked.load(4).unwrap() == Loading::More {
        turns += 1;
        assert!(turns < 10);
    }
    // 16 bytes at 4 a turn: the fourth call ends reading and finishes.
    assert_eq!(turns, 3);
    assert!(checked.held_bytes() >= 16);
    let (content, _) = checked.into_content(Flavour::OpenAi).unwrap();
    assert_eq!(content.as_text(), Some("Hello0123456789abcdef"));
}
