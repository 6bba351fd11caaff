//! The content vectors AT1–AT16 (SPEC Appendix A.2), run through the whole path: staged files,
//! check, load, content, body bytes.

use super::testing::{run, run_handoff, Handoff, Outcome, TempDir, MAX_TOTAL};
use super::*;
use crate::config::ContentFormat;

const OA: Flavour = Flavour::OpenAi;
const LG: Flavour = Flavour::LangGraph(ContentFormat::OpenAi);
const LGA: Flavour = Flavour::LangGraph(ContentFormat::Anthropic);
const ALL: [Flavour; 3] = [OA, LG, LGA];

const PDF: &str = r#"{"type":"file","file":{"filename":"r.pdf","file_data":"data:application/pdf;base64,JVBERi0xLjQ="}}"#;
const DOC: &str = r#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQ="}}"#;

/// `<m b>`
fn img(mime: &str, base64: &str) -> String {
    format!(r#"{{"type":"image_url","image_url":{{"url":"data:{mime};base64,{base64}"}}}}"#)
}

fn text(t: &str) -> String {
    format!(
        r#"{{"type":"text","text":{}}}"#,
        serde_json::to_string(t).unwrap()
    )
}

fn array(parts: &[&str]) -> String {
    format!("[{}]", parts.join(","))
}

/// Runs a handoff that must pass; every staged file must be gone afterwards.
fn ok(json: &str, files: &[(&str, &[u8])], flavour: Flavour) -> Outcome {
    let (result, left) = run(json, files, flavour);
    let outcome = result.unwrap_or_else(|refusal| panic!("{}", refusal.log_detail()));
    assert!(left.is_empty(), "files left: {left:?}");
    outcome
}

fn content(json: &str, files: &[(&str, &[u8])], flavour: Flavour) -> String {
    ok(json, files, flavour).content.expect("attached")
}

#[test]
fn at1_a_placeholder_each_for_an_image_and_a_text() {
    let json = r#"{"prompt":"Describe this photo: {photo}. Here are my notes: {notes}","attachments":{"photo":"p.jpg","notes":"n.txt"}}"#;
    let files: &[(&str, &[u8])] = &[("p.jpg", b"JPEGDATA"), ("n.txt", b"my notes")];
    let expected = array(&[
        &text("Describe this photo: "),
        &img("image/jpeg", "SlBFR0RBVEE="),
        &text(". Here are my notes: my notes"),
    ]);
    for flavour in ALL {
        let outcome = ok(json, files, flavour);
        assert_eq!(
            outcome.content.as_deref(),
            Some(expected.as_str()),
            "{flavour:?}"
        );
        assert_eq!(outcome.sent, 2);
        assert!(outcome.warnings.is_empty());
    }
}

#[test]
fn at2_an_unreferenced_image_comes_first() {
    let json = r#"{"prompt":"What is in this image?","attachments":{"photo":"p.png"}}"#;
    let expected = array(&[
        &img("image/png", "iVBORw=="),
        &text("What is in this image?"),
    ]);
    for flavour in ALL {
        assert_eq!(content(json, &[("p.png", b"\x89PNG")], flavour), expected);
    }
}

#[test]
fn at3_text_only_is_a_string() {
    let json = r#"{"prompt":"Summarize: {r}","attachments":{"r":"r.csv"}}"#;
    for flavour in ALL {
        assert_eq!(
            content(json, &[("r.csv", b"a,b\n1,2\n")], flavour),
            r#""Summarize: a,b\n1,2\n""#
        );
    }
}

#[test]
fn at4_a_referenced_pdf_per_flavour() {
    let json = r#"{"prompt":"Summarize {r}","attachments":{"r":"r.pdf"}}"#;
    let files: &[(&str, &[u8])] = &[("r.pdf", b"%PDF-1.4")];
    assert_eq!(content(json, files, OA), array(&[&text("Summarize "), PDF]));
    let lg = ok(json, files, LG);
    assert_eq!(lg.content.as_deref(), Some(r#""Summarize {r}""#));
    assert_eq!(lg.sent, 0);
    assert_eq!(lg.warnings.len(), 1);
    assert!(matches!(
        &lg.warnings[0],
        Warning::Unsendable {
            referenced: true,
            ..
        }
    ));
    assert_eq!(lg.warnings[0].kind(), WarningKind::Unsendable);
    assert_eq!(
        content(json, files, LGA),
        array(&[&text("Summarize "), DOC])
    );
}

#[test]
fn at5_an_unreferenced_pdf_per_flavour() {
    let json = r#"{"prompt":"What does this say?","attachments":{"r":"r.pdf"}}"#;
    let files: &[(&str, &[u8])] = &[("r.pdf", b"%PDF-1.4")];
    assert_eq!(
        content(json, files, OA),
        array(&[PDF, &text("What does this say?")])
    );
    let lg = ok(json, files, LG);
    assert_eq!(lg.content.as_deref(), Some(r#""What does this say?""#));
    assert!(matches!(
        &lg.warnings[..],
        [Warning::Unsendable {
            referenced: false,
            ..
        }]
    ));
    assert_eq!(
        content(json, files, LGA),
        array(&[DOC, &text("What does this say?")])
    );
}

#[test]
fn at6_every_occurrence_is_replaced() {
    let json = r#"{"prompt":"A {n} B {n} C {p} D {p}","attachments":{"n":"n.txt","p":"p.png"}}"#;
    let image = img("image/png", "iVBORw==");
    let expected = array(&[&text("A T B T C "), &image, &text(" D "), &image]);
    for flavour in ALL {
        let outcome = ok(json, &[("n.txt", b"T"), ("p.png", b"\x89PNG")], flavour);
        assert_eq!(outcome.content.as_deref(), Some(expected.as_str()));
        assert_eq!(outcome.sent, 2, "each file counts once");
    }
}

#[test]
fn at7_unreferenced_texts_are_appended_in_ref_order() {
    let json = r#"{"prompt":"P","attachments":{"zz":"z.txt","aa":"a.txt"}}"#;
    assert_eq!(
        content(json, &[("z.txt", b"Z"), ("a.txt", b"A")], OA),
        r#""PAZ""#
    );
}

#[test]
fn at8_only_the_first_closing_brace_after_an_opening_one_counts() {
    let json = r#"{"prompt":"{x {n}} {{n}} {n}","attachments":{"n":"n.txt"}}"#;
    assert_eq!(
        content(json, &[("n.txt", b"N")], OA),
        r#""{x {n}} {{n}} N""#
    );
}

#[test]
fn at9_a_missing_file_is_skipped_and_its_placeholder_stays() {
    let json = r#"{"prompt":"see {a} and {b}","attachments":{"a":"gone.png","b":"b.txt"}}"#;
    let outcome = ok(json, &[("b.txt", b"B")], OA);
    assert_eq!(outcome.content.as_deref(), Some(r#""see {a} and B""#));
    assert_eq!(outcome.warnings.len(), 1);
    let warning = &outcome.warnings[0];
    assert_eq!(warning.kind(), WarningKind::Skipped);
    let line = warning.to_string();
    assert!(
        line.starts_with("attachment \"a\" skipped: file \"gone.png\""),
        "{line}"
    );
}

#[test]
fn at10_only_the_last_user_message_is_the_target() {
    let json = r#"{"messages":[{"role":"system","content":"S {n}"},{"role":"user","content":"U {n}"},{"role":"assistant","content":"A {n}"}],"attachments":{"n":"n.md"}}"#;
    let temp = TempDir::new("at10");
    temp.write("n.md", b"# T");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let handoff = Handoff::parse(json, temp.path());
    let checked = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap();
    assert!(!checked.is_empty());
    assert_eq!(checked.target_index(), Some(1));
    drop(checked);
    temp.write("n.md", b"# T");
    for flavour in ALL {
        let outcome = run_handoff(&handoff, &dir, flavour).unwrap();
        assert_eq!(outcome.content.as_deref(), Some(r#""U # T""#));
        temp.write("n.md", b"# T");
    }
}

#[test]
fn at11_unreferenced_binaries_then_images_then_the_text() {
    let json = r#"{"prompt":"T {p}","image_base64":"R0lGODlh","image_mime_type":"image/gif","images":[{"base64":"/9j/"},{"base64":"UklGRg==","mime_type":"image/webp"}],"attachments":{"p":"p.png","q":"q.jpg"}}"#;
    let expected = array(&[
        &img("image/jpeg", "Sko="),
        &img("image/jpeg", "/9j/"),
        &img("image/webp", "UklGRg=="),
        &img("image/gif", "R0lGODlh"),
        &text("T "),
        &img("image/png", "iVBORw=="),
    ]);
    for flavour in ALL {
        let outcome = ok(json, &[("p.png", b"\x89PNG"), ("q.jpg", b"JJ")], flavour);
        assert_eq!(outcome.content.as_deref(), Some(expected.as_str()));
        assert_eq!(outcome.sent, 5);
    }
}

#[test]
fn at12_images_alone_always_keep_a_text_part() {
    let expected = array(&[&img("image/jpeg", "QQ=="), &text("x")]);
    assert_eq!(
        content(r#"{"prompt":"x","images":[{"base64":"QQ=="}]}"#, &[], OA),
        expected
    );
    let json = r#"{"messages":[{"role":"user","content":""}],"images":[{"base64":"QQ=="}]}"#;
    let expected = array(&[&img("image/jpeg", "QQ=="), &text("")]);
    for flavour in ALL {
        assert_eq!(content(json, &[], flavour), expected);
    }
}

#[test]
fn at13_type_overrides_are_cut_and_keep_their_case() {
    let json = r#"{"prompt":"{a} {b}","attachments":{"a":"a.bin","b":"b.dat"},"attachment_types":{"a":"Text/Plain; charset=utf-8","b":" IMAGE/PNG "}}"#;
    let expected = array(&[&text("hello "), &img("IMAGE/PNG", "iVBORw==")]);
    for flavour in ALL {
        assert_eq!(
            content(json, &[("a.bin", b"hello"), ("b.dat", b"\x89PNG")], flavour),
            expected
        );
    }
}

#[test]
fn at14_image_paths_then_image_path_and_the_subdirectory_stays() {
    let json = r#"{"prompt":"x","image_paths":["D/a.PNG"],"image_path":"D/sub/b.webp"}"#;
    let expected = array(&[
        &img("image/png", "iVBORw=="),
        &img("image/webp", "UklGRg=="),
        &text("x"),
    ]);
    for flavour in ALL {
        let (result, left) = run(
            json,
            &[("a.PNG", b"\x89PNG"), ("sub/b.webp", b"RIFF")],
            flavour,
        );
        let outcome = result.unwrap_or_else(|r| panic!("{}", r.log_detail()));
        assert_eq!(outcome.content.as_deref(), Some(expected.as_str()));
        assert_eq!(outcome.sent, 2);
        assert_eq!(left, ["sub/"]);
    }
}

#[test]
fn image_paths_may_use_the_canonical_path_of_a_symlinked_data_dir() {
    let temp = TempDir::new("canonical");
    temp.mkdir("real");
    temp.write("real/a.gif", b"GIF8");
    let link = temp.path().join("link");
    std::os::unix::fs::symlink(temp.path().join("real"), &link).unwrap();
    let (dir, _) = DataDir::open(&link).unwrap();
    let real = std::fs::canonicalize(temp.path().join("real")).unwrap();
    let json = format!(
        r#"{{"prompt":"x","image_paths":["{}/a.gif"]}}"#,
        real.display()
    );
    let handoff = Handoff::parse(&json, &link);
    let outcome = run_handoff(&handoff, &dir, OA).unwrap();
    assert_eq!(
        outcome.content.unwrap(),
        array(&[&img("image/gif", "R0lGOA=="), &text("x")])
    );
    assert!(!temp.exists("real/a.gif"));
}

#[test]
fn at15_a_ref_given_twice_uses_the_last_and_deletes_both() {
    let temp = TempDir::new("at15");
    temp.write("one.txt", b"ONE");
    temp.write("two.txt", b"TWO");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let mut handoff = Handoff::parse(r#"{"prompt":"{a}"}"#, temp.path());
    handoff.request.attachments = vec![
        ("a".into(), "one.txt".into()),
        ("a".into(), "two.txt".into()),
    ];
    let outcome = run_handoff(&handoff, &dir, OA).unwrap();
    assert_eq!(outcome.content.as_deref(), Some(r#""TWO""#));
    assert_eq!(outcome.sent, 1);
    assert!(temp.listing().is_empty(), "{:?}", temp.listing());
}

#[test]
fn at16_local_backends_delete_and_read_nothing() {
    let temp = TempDir::new("at16");
    temp.write("p.jpg", b"JPEGDATA");
    // Not UTF-8: a local backend never reads it, so it is not refused.
    temp.write("n.txt", b"\xffnotes");
    let (dir, _) = DataDir::open(temp.path()).unwrap();
    let json = r#"{"prompt":"Describe this photo: {photo}. Here are my notes: {notes}","attachments":{"photo":"p.jpg","notes":"n.txt"}}"#;
    let handoff = Handoff::parse(json, temp.path());
    let checked = handoff.check(DirAccess::Open(&dir), MAX_TOTAL).unwrap();
    assert_eq!(checked.count(), 2);
    assert!(temp.listing().is_empty());
    let (content, warnings) = checked.into_content(Flavour::Local).unwrap();
    assert_eq!(content.sent(), 0);
    assert!(warnings.is_empty());
}

#[test]
fn nothing_attached_leaves_the_messages_alone() {
    let outcome = ok(r#"{"prompt":"hi {x}"}"#, &[], OA);
    assert!(outcome.content.is_none());
    assert_eq!(outcome.sent, 0);
}

#[test]
fn an_empty_prompt_becomes_hello() {
    assert_eq!(
        content(
            r#"{"attachments":{"a":"a.txt"}}"#,
            &[("a.txt", b" there")],
            OA
        ),
        r#""Hello there""#
    );
}

#[test]
fn all_files_missing_is_the_plain_text() {
    let outcome = ok(
        r#"{"prompt":"{a}","attachments":{"a":"gone.txt"}}"#,
        &[],
        OA,
    );
    assert_eq!(outcome.content.as_deref(), Some(r#""{a}""#));
    assert_eq!(outcome.sent, 0);
}

#[test]
fn placeholder_scanning_edges() {
    let files: &[(&str, &[u8])] = &[("n.txt", b"N"), ("p.png", b"\x89PNG")];
    let attachments = r#""attachments":{"n":"n.txt","p":"p.png"}"#;
    let case = |prompt: &str| {
        let json = format!(
            r#"{{"prompt":{},{attachments}}}"#,
            serde_json::to_string(prompt).unwrap()
        );
        content(&json, files, OA)
    };
    let png = img("image/png", "iVBORw==");
    // A lone `}` and a `{` without `}` are literal; the image comes first when unreferenced.
    assert_eq!(case("} {n} {"), array(&[&png, &text("} N {")]));
    // A placeholder at either end makes no empty text part.
    assert_eq!(case("{p}{n}"), array(&[&png, &text("N")]));
    assert_eq!(case("{n}{p}"), array(&[&text("N"), &png]));
    // Unknown refs and empty braces stay literal.
    assert_eq!(case("{q}{}{p}"), array(&[&text("{q}{}"), &png, &text("N")]));
    // Text after the last part merges with the unreferenced text appended at the end.
    let json = r#"{"prompt":"{p} end ","attachments":{"n":"n.txt","p":"p.png"}}"#;
    assert_eq!(content(json, files, OA), array(&[&png, &text(" end N")]));
}

#[test]
fn text_is_escaped_and_non_ascii_survives() {
    let json = r#"{"prompt":"q: {t}","attachments":{"t":"t.txt"}}"#;
    let body = content(
        json,
        &[("t.txt", "\"quoted\" \\ tab\t é 😀 \u{1}".as_bytes())],
        OA,
    );
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value, "q: \"quoted\" \\ tab\t é 😀 \u{1}");
}

#[test]
fn other_binaries_make_documents_only_for_anthropic() {
    let json = r#"{"prompt":"{z}","attachments":{"z":"z.bin"},"attachment_types":{"z":"application/zip"}}"#;
    let files: &[(&str, &[u8])] = &[("z.bin", b"PK")];
    assert_eq!(content(json, files, OA), r#""{z}""#);
    assert_eq!(content(json, files, LG), r#""{z}""#);
    assert_eq!(
        content(json, files, LGA),
        array(&[
            r#"{"type":"document","source":{"type":"base64","media_type":"application/zip","data":"UEs="}}"#
        ])
    );
}
