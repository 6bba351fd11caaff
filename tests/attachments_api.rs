//! The attachments API as the connection and the backends use it, from outside the crate: open
//! the directory, check a handoff, load its texts a slice per turn, write an OpenAI-shaped body
//! around the target message's content and stream it out through a small buffer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use streaming_daemon::attachments::{
    check, discard, find_target, sweep, AttachmentError, AttachmentRequest, BodyPlan, DataDirSlot,
    DirAccess, Flavour, Limits, Loading, MessageView, WarningKind, SLICE,
};
use streaming_daemon::end::Rejection;

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("sd-attach-api-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Dir(path)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn request(pairs: &[(&str, &str)]) -> AttachmentRequest {
    AttachmentRequest {
        attachments: pairs
            .iter()
            .map(|(r, n)| (r.to_string(), n.to_string()))
            .collect(),
        ..AttachmentRequest::default()
    }
}

fn messages() -> Vec<(&'static str, &'static str)> {
    vec![
        ("system", "Be brief. {p}"),
        ("user", "Look at {p}; notes: {n}"),
        ("assistant", "OK"),
    ]
}

/// What an openai request builder does: every message as usual, the target's content from
/// the attachments.
fn openai_body(
    target: Option<usize>,
    content: &streaming_daemon::attachments::Content,
) -> BodyPlan {
    let mut plan = BodyPlan::new();
    plan.push(br#"{"model":"gpt-4o-mini","messages":["#);
    for (i, (role, text)) in messages().into_iter().enumerate() {
        if i > 0 {
            plan.push(b",");
        }
        if Some(i) == target {
            plan.push(br#"{"role":"#);
            plan.push_json_string(role);
            plan.push(br#","content":"#);
            plan.push_content(content);
            plan.push(b"}");
        } else {
            serde_json::to_writer(&mut plan, &json!({"role": role, "content": text})).unwrap();
        }
    }
    plan.push(br#"],"stream":true}"#);
    plan
}

#[test]
fn a_checked_handoff_becomes_a_streamed_openai_body() {
    let dir = Dir::new("flow");
    let (mut slot, opened) = DataDirSlot::open(Some(&dir.0), Instant::now());
    assert!(opened.unwrap().iter().any(|n| !n.is_warning()), "created");
    dir.write("p.png", b"\x89PNG");
    dir.write("n.txt", "line 1\nline \"2\"".as_bytes());
    assert!(
        slot.retry(Instant::now()).is_none(),
        "open: nothing to retry"
    );

    let mut request = request(&[("p", "p.png"), ("n", "n.txt"), ("gone", "gone.pdf")]);
    request.image_base64 = Some("R0lGODlh".into());
    request.image_mime_type = Some("image/gif".into());
    let views: Vec<MessageView<'_>> = messages()
        .into_iter()
        .map(|(role, text)| MessageView {
            role,
            text: Some(text),
        })
        .collect();
    let target = find_target(&views, "");
    let mut checked = check(
        &request,
        target,
        slot.access(),
        Limits { max_total: 1 << 20 },
    )
    .unwrap_or_else(|refusal| panic!("{}", refusal.log_detail()));
    assert!(dir.names().is_empty(), "deleted at once: {:?}", dir.names());
    let warnings = checked.take_warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].kind(), WarningKind::Skipped);

    let mut turns = 0;
    while checked.load(SLICE).unwrap() == Loading::More {
        turns += 1;
        assert!(turns < 100);
    }
    let target_index = checked.target_index();
    assert_eq!(target_index, Some(1));
    let (content, warnings) = checked.into_content(Flavour::OpenAi).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(content.sent(), 3);

    let mut body = openai_body(target_index, &content).finish();
    drop(content);
    let content_length = body.len();
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        // A socket that takes 100 bytes a turn.
        if body.fill_vec(&mut sent, 100).unwrap() == 0 {
            break;
        }
        assert!(body.held_bytes() < 4096);
    }
    assert!(body.is_done());
    assert_eq!(sent.len() as u64, content_length);

    let value: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(
        value,
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief. {p}"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlh"}},
                    {"type": "text", "text": "Look at "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
                    {"type": "text", "text": "; notes: line 1\nline \"2\""},
                ]},
                {"role": "assistant", "content": "OK"},
            ],
            "stream": true,
        })
    );

    // A retried request sends the same bytes.
    body.rewind();
    let mut again = Vec::new();
    while body.fill_vec(&mut again, SLICE).unwrap() > 0 {}
    assert_eq!(again, sent);
}

#[test]
fn a_refusal_names_the_ref_and_maps_to_a_status_and_reason() {
    let dir = Dir::new("refusal");
    let (slot, _) = DataDirSlot::open(Some(&dir.0), Instant::now());
    dir.write("a.txt", b"a");
    dir.write("b.exe", b"MZ");
    let request = request(&[("a", "a.txt"), ("b", "b.exe")]);
    let target = find_target(&[], "{a}");
    let refusal = check(&request, target, slot.access(), Limits { max_total: 100 }).unwrap_err();
    assert_eq!(
        refusal.error,
        AttachmentError::UnknownType(streaming_daemon::attachments::FileLabel::Attachment(
            "b".into()
        ))
    );
    assert_eq!(refusal.error.status().code(), 400);
    assert_eq!(refusal.error.rejection(), Rejection::BadAttachment);
    assert!(!refusal.error.to_string().contains("b.exe"));
    assert!(refusal.log_detail().contains("b.exe"));
    assert!(dir.names().is_empty());
}

#[test]
fn discard_and_sweep() {
    let dir = Dir::new("discard");
    let (slot, _) = DataDirSlot::open(Some(&dir.0), Instant::now());
    dir.write("a.txt", b"a");
    dir.write("old.txt", b"o");
    assert!(discard(&request(&[("a", "a.txt")]), slot.access()).is_empty());
    assert_eq!(dir.names(), ["old.txt"]);
    let DirAccess::Open(open) = slot.access() else {
        panic!("open");
    };
    let later = SystemTime::now() + Duration::from_secs(3600);
    let report = sweep(open, Duration::from_secs(60), later);
    assert_eq!(report.removed, 1, "{report}");
    assert!(dir.names().is_empty());
    assert!(Path::new(&dir.0).is_dir(), "never the directory itself");
}
