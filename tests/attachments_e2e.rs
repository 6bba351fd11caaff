//! Attachments end to end (SPEC §4.5, appendix A.2): the real binary, files staged in its data
//! directory, the request bodies as the fake upstream receives them, every rejection and its
//! status, and which files are left afterwards.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::upstream::*;
use common::*;
use serde_json::Value;
use streaming_daemon::config::SocketType;

const LIMIT: Duration = Duration::from_secs(30);
const PDF: &str = r#"{"type":"file","file":{"filename":"r.pdf","file_data":"data:application/pdf;base64,JVBERi0xLjQ="}}"#;
const DOC: &str = r#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQ="}}"#;

/// A staged file: its name under `D` and its bytes.
fn f<'a>(name: &'static str, bytes: &'a [u8]) -> (&'static str, &'a [u8]) {
    (name, bytes)
}

fn img(mime: &str, base64: &str) -> String {
    format!(r#"{{"type":"image_url","image_url":{{"url":"data:{mime};base64,{base64}"}}}}"#)
}

fn text(text: &str) -> String {
    format!(
        r#"{{"type":"text","text":{}}}"#,
        serde_json::to_string(text).unwrap()
    )
}

/// A data directory `D` inside a private base, so that a name escaping `D` would reach the
/// base (which the test watches) and nothing shared.
struct Staging {
    base: PathBuf,
    dir: PathBuf,
}

impl Staging {
    fn new(name: &str) -> Staging {
        let base = std::env::temp_dir().join(format!("sd-att-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("D");
        std::fs::create_dir_all(&dir).unwrap();
        Staging { base, dir }
    }

    fn flag(&self) -> String {
        format!("-data-dir={}", self.dir.display())
    }

    fn stage(&self, files: &[(&str, &[u8])]) {
        for (name, bytes) in files {
            let path = self.dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    /// Every entry under `D`, directories with a trailing `/`, sorted.
    fn left(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    out.push(format!("{name}/"));
                    walk(&entry.path(), &format!("{name}/"), out);
                } else {
                    out.push(name);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, "", &mut out);
        out.sort();
        out
    }

    /// Empties `D`, which stays: the daemon holds it open.
    fn clear(&self) {
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                std::fs::remove_dir_all(entry.path()).unwrap();
            } else {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }

    /// `D/` in a handoff stands for the directory's absolute path.
    fn handoff(&self, template: &str) -> Vec<u8> {
        template
            .replace("D/", &format!("{}/", self.dir.display()))
            .into_bytes()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// One A.2 content vector: the handoff, its files, and the target message's content for
/// openai, langgraph (`content_format: openai`) and langgraph `anthropic` when they differ.
struct Vector {
    id: &'static str,
    handoff: &'static str,
    files: Vec<(&'static str, &'static [u8])>,
    openai: String,
    langgraph: Option<String>,
    anthropic: Option<String>,
    /// What is left in `D` afterwards.
    left: Vec<&'static str>,
}

fn vector(
    id: &'static str,
    handoff: &'static str,
    files: &[(&'static str, &'static [u8])],
    all: String,
) -> Vector {
    Vector {
        id,
        handoff,
        files: files.to_vec(),
        openai: all,
        langgraph: None,
        anthropic: None,
        left: Vec::new(),
    }
}

fn vectors() -> Vec<Vector> {
    let png = img("image/png", "iVBORw==");
    let mut list = vec![
        vector(
            "AT1",
            r#"{"prompt":"Describe this photo: {photo}. Here are my notes: {notes}","attachments":{"photo":"p.jpg","notes":"n.txt"}}"#,
            &[f("p.jpg", b"JPEGDATA"), f("n.txt", b"my notes")],
            format!(
                "[{},{},{}]",
                text("Describe this photo: "),
                img("image/jpeg", "SlBFR0RBVEE="),
                text(". Here are my notes: my notes")
            ),
        ),
        vector(
            "AT2",
            r#"{"prompt":"What is in this image?","attachments":{"photo":"p.png"}}"#,
            &[f("p.png", b"\x89PNG")],
            format!("[{png},{}]", text("What is in this image?")),
        ),
        vector(
            "AT3",
            r#"{"prompt":"Summarize: {r}","attachments":{"r":"r.csv"}}"#,
            &[f("r.csv", b"a,b\n1,2\n")],
            r#""Summarize: a,b\n1,2\n""#.to_string(),
        ),
        Vector {
            langgraph: Some(r#""Summarize {r}""#.to_string()),
            anthropic: Some(format!("[{},{DOC}]", text("Summarize "))),
            ..vector(
                "AT4",
                r#"{"prompt":"Summarize {r}","attachments":{"r":"r.pdf"}}"#,
                &[f("r.pdf", b"%PDF-1.4")],
                format!("[{},{PDF}]", text("Summarize ")),
            )
        },
        Vector {
            langgraph: Some(r#""What does this say?""#.to_string()),
            anthropic: Some(format!("[{DOC},{}]", text("What does this say?"))),
            ..vector(
                "AT5",
                r#"{"prompt":"What does this say?","attachments":{"r":"r.pdf"}}"#,
                &[f("r.pdf", b"%PDF-1.4")],
                format!("[{PDF},{}]", text("What does this say?")),
            )
        },
        vector(
            "AT6",
            r#"{"prompt":"A {n} B {n} C {p} D {p}","attachments":{"n":"n.txt","p":"p.png"}}"#,
            &[f("n.txt", b"T"), f("p.png", b"\x89PNG")],
            format!("[{},{png},{},{png}]", text("A T B T C "), text(" D ")),
        ),
        vector(
            "AT7",
            r#"{"prompt":"P","attachments":{"zz":"z.txt","aa":"a.txt"}}"#,
            &[f("z.txt", b"Z"), f("a.txt", b"A")],
            r#""PAZ""#.to_string(),
        ),
        vector(
            "AT8",
            r#"{"prompt":"{x {n}} {{n}} {n}","attachments":{"n":"n.txt"}}"#,
            &[f("n.txt", b"N")],
            r#""{x {n}} {{n}} N""#.to_string(),
        ),
        vector(
            "AT9",
            r#"{"prompt":"see {a} and {b}","attachments":{"a":"gone.png","b":"b.txt"}}"#,
            &[f("b.txt", b"B")],
            r#""see {a} and B""#.to_string(),
        ),
        vector(
            "AT11",
            r#"{"prompt":"T {p}","image_base64":"R0lGODlh","image_mime_type":"image/gif","images":[{"base64":"/9j/"},{"base64":"UklGRg==","mime_type":"image/webp"}],"attachments":{"p":"p.png","q":"q.jpg"}}"#,
            &[f("p.png", b"\x89PNG"), f("q.jpg", b"JJ")],
            format!(
                "[{},{},{},{},{},{png}]",
                img("image/jpeg", "Sko="),
                img("image/jpeg", "/9j/"),
                img("image/webp", "UklGRg=="),
                img("image/gif", "R0lGODlh"),
                text("T ")
            ),
        ),
        vector(
            "AT12",
            r#"{"prompt":"x","images":[{"base64":"QQ=="}]}"#,
            &[],
            format!("[{},{}]", img("image/jpeg", "QQ=="), text("x")),
        ),
        vector(
            "AT12b",
            r#"{"messages":[{"role":"user","content":""}],"images":[{"base64":"QQ=="}]}"#,
            &[],
            format!("[{},{}]", img("image/jpeg", "QQ=="), text("")),
        ),
        vector(
            "AT13",
            r#"{"prompt":"{a} {b}","attachments":{"a":"a.bin","b":"b.dat"},"attachment_types":{"a":"Text/Plain; charset=utf-8","b":" IMAGE/PNG "}}"#,
            &[f("a.bin", b"hello"), f("b.dat", b"\x89PNG")],
            format!("[{},{}]", text("hello "), img("IMAGE/PNG", "iVBORw==")),
        ),
        Vector {
            left: vec!["sub/"],
            ..vector(
                "AT14",
                r#"{"prompt":"x","image_paths":["D/a.PNG"],"image_path":"D/sub/b.webp"}"#,
                &[f("a.PNG", b"\x89PNG"), f("sub/b.webp", b"RIFF")],
                format!("[{png},{},{}]", img("image/webp", "UklGRg=="), text("x")),
            )
        },
        vector(
            "AT15",
            r#"{"prompt":"{a}","attachments":{"a":"one.txt","a":"two.txt"}}"#,
            &[f("one.txt", b"ONE"), f("two.txt", b"TWO")],
            r#""TWO""#.to_string(),
        ),
    ];
    for v in &mut list {
        // Only PDFs differ by flavour here: the rest is the same for every backend.
        if v.langgraph.is_none() {
            v.langgraph = Some(v.openai.clone());
        }
        if v.anthropic.is_none() {
            v.anthropic = v.langgraph.clone();
        }
    }
    list
}

/// The target message's content in a request body: the last user message.
fn target_content(body: &Value) -> Value {
    let (messages, role_key, user) = match body.get("input") {
        Some(input) => (&input["messages"], "type", "human"),
        None => (&body["messages"], "role", "user"),
    };
    messages
        .as_array()
        .expect("messages")
        .iter()
        .rev()
        .find(|m| m[role_key] == user)
        .expect("a user message")["content"]
        .clone()
}

fn upstream_ok(provider: &str, count: usize) -> FakeUpstream {
    let script = (0..count)
        .map(|_| match provider {
            "openai" => ok_stream(&[&delta("\"ok\""), DONE_EVENT]),
            _ => ok_stream(&[]),
        })
        .collect();
    FakeUpstream::start(Kind::Plain, script)
}

fn with_profile(handoff: &[u8]) -> Vec<u8> {
    let mut out = b"{\"profile\":\"claude\",".to_vec();
    out.extend_from_slice(&handoff[1..]);
    out
}

const LANGGRAPH: &str =
    "  langgraph:\n    assistant_id: agent\n    profiles:\n      claude:\n        \
    content_format: anthropic\n";

#[test]
fn every_content_vector_reaches_openai_and_langgraph_as_specified() {
    for provider in ["openai", "langgraph"] {
        let staging = Staging::new(&format!("vectors-{provider}"));
        let upstream = upstream_ok(provider, 64);
        let flag = staging.flag();
        let yaml = if provider == "langgraph" {
            LANGGRAPH
        } else {
            ""
        };
        let name = format!("att-{provider}");
        let config = std::env::temp_dir().join(format!("sd-{name}-{}.yaml", std::process::id()));
        std::fs::write(&config, format!("backend:\n  provider: {provider}\n{yaml}")).unwrap();
        let base = format!("{}/v1", upstream.base);
        let base_flag = format!("-{provider}-base");
        let args = [
            "-config",
            config.to_str().unwrap(),
            &base_flag,
            &base,
            &flag,
        ];
        let mut d = Daemon::start_with_env(temp_socket_path(&name), &args, &[]);
        let _ = std::fs::remove_file(&config);

        let mut sent = 0;
        for v in vectors() {
            let flavours: Vec<(&str, &String, bool)> = match provider {
                "openai" => vec![("OA", &v.openai, false)],
                _ => vec![
                    ("LG", v.langgraph.as_ref().unwrap(), false),
                    ("LG/a", v.anthropic.as_ref().unwrap(), true),
                ],
            };
            for (flavour, expected, claude) in flavours {
                staging.stage(&v.files);
                let mut handoff = staging.handoff(v.handoff);
                if claude {
                    handoff = with_profile(&handoff);
                }
                let response = d.request(&handoff);
                assert!(
                    response.starts_with(SSE_HEAD),
                    "{} {flavour}: {response}",
                    v.id
                );
                sent += 1;
                let requests = upstream.requests();
                assert_eq!(requests.len(), sent, "{} {flavour}", v.id);
                let body: Value = serde_json::from_str(&requests[sent - 1].body).unwrap();
                let expected: Value = serde_json::from_str(expected).unwrap();
                assert_eq!(target_content(&body), expected, "{} {flavour}", v.id);
                assert_eq!(staging.left(), v.left, "{} {flavour}: files left", v.id);
                staging.clear();
            }
        }
        // AT4/AT5 on langgraph's openai format and AT9's missing file said so.
        if provider == "langgraph" {
            d.wait_for_log("cannot be sent to this backend", LIMIT);
        }
        d.wait_for_log("could not be opened", LIMIT);
        // AT11 sends five images (two files, two inline, the deprecated one).
        let ended = d.wait_for_log("attachments=5", LIMIT);
        assert!(ended.contains("connection ended"), "{ended}");
    }
}

#[test]
fn only_the_last_user_message_is_resolved_at10() {
    let staging = Staging::new("at10");
    let handoff = br#"{"messages":[{"role":"system","content":"S {n}"},{"role":"user","content":"U {n}"},{"role":"assistant","content":"A {n}"}],"attachments":{"n":"n.md"}}"#;
    for (provider, expected) in [
        (
            "openai",
            r#"[{"role":"system","content":"S {n}"},{"role":"user","content":"U # T"},{"role":"assistant","content":"A {n}"}]"#,
        ),
        (
            "langgraph",
            r#"[{"type":"system","content":"S {n}"},{"type":"human","content":"U # T"},{"type":"ai","content":"A {n}"}]"#,
        ),
    ] {
        let upstream = upstream_ok(provider, 1);
        let flag = staging.flag();
        let d = upstream_daemon_with(&format!("at10-{provider}"), provider, &upstream, &[&flag]);
        staging.stage(&[f("n.md", b"# T")]);
        let response = d.request(handoff);
        assert!(response.starts_with(SSE_HEAD), "{response}");
        let body: Value = serde_json::from_str(&upstream.requests()[0].body).unwrap();
        let messages = match provider {
            "openai" => &body["messages"],
            _ => &body["input"]["messages"],
        };
        assert_eq!(*messages, serde_json::from_str::<Value>(expected).unwrap());
        assert!(staging.left().is_empty());
    }
}

/// The daemon running `provider` in front of `upstream`, with extra flags.
fn upstream_daemon_with(
    name: &str,
    provider: &str,
    upstream: &FakeUpstream,
    extra: &[&str],
) -> Daemon {
    let base = format!("{}/v1", upstream.base);
    let base_flag = format!("-{provider}-base");
    let mut args = vec!["-backend", provider, &base_flag, &base];
    args.extend_from_slice(extra);
    Daemon::start(name, &args)
}

#[test]
fn local_backends_check_and_delete_but_send_nothing_at16() {
    let staging = Staging::new("at16");
    let flag = staging.flag();
    let mut d = Daemon::start("at16", &["-backend", "mock", "-message-delay=0s", &flag]);
    staging.stage(&[f("p.jpg", b"JPEGDATA"), f("n.txt", b"my notes")]);
    let response = d.request(
        br#"{"prompt":"Describe this photo: {photo}. Here are my notes: {notes}","attachments":{"photo":"p.jpg","notes":"n.txt"}}"#,
    );
    assert!(response.starts_with(SSE_HEAD), "{response}");
    assert!(response.ends_with("data: [DONE]\n\n"), "{response}");
    assert!(staging.left().is_empty());
    let line = d.wait_for_log("attachments ignored by this backend", LIMIT);
    assert!(line.contains("count=2"), "{line}");
    // A rejection on a local backend deletes just the same.
    staging.stage(&[f("a.bmp", b"BM")]);
    let response = d.request(br#"{"prompt":"{a}","attachments":{"a":"a.bmp"}}"#);
    assert_eq!(status(&response), "HTTP/1.1 400 Bad Request");
    assert!(staging.left().is_empty());
}

/// One A.2 rejection: the handoff, its files, the status, and what is left in `D`.
struct Refused {
    id: &'static str,
    handoff: String,
    files: Vec<(String, Vec<u8>)>,
    status: u16,
    left: Vec<&'static str>,
}

fn refused(
    id: &'static str,
    handoff: &str,
    files: &[(&'static str, &[u8])],
    status: u16,
) -> Refused {
    Refused {
        id,
        handoff: handoff.to_string(),
        files: files
            .iter()
            .map(|(n, b)| (n.to_string(), b.to_vec()))
            .collect(),
        status,
        left: Vec::new(),
    }
}

fn refusals() -> Vec<Refused> {
    let mut list = vec![
        refused(
            "AE1",
            r#"{"prompt":"x {a}","attachments":{"a":"../secret.txt","b":"b.txt"}}"#,
            &[f("b.txt", b"b")],
            400,
        ),
        refused(
            "AE3",
            r#"{"prompt":"{a}","attachments":{"a":"a.bmp"}}"#,
            &[f("a.bmp", b"BM")],
            400,
        ),
        refused(
            "AE8",
            r#"{"prompt":"{a}","attachments":{"a":"a.txt","b":"b.txt"}}"#,
            &[f("a.txt", b"a\xff"), f("b.txt", b"b")],
            400,
        ),
        refused(
            "AE9",
            r#"{"prompt":"{a}","attachments":{"a":"a.bin"},"attachment_types":{"a":" ; x"}}"#,
            &[f("a.bin", b"hello")],
            400,
        ),
        refused(
            "AE12a",
            r#"{"prompt":"x","image_paths":["a.png"]}"#,
            &[],
            400,
        ),
        refused(
            "AE12b",
            r#"{"prompt":"x","image_paths":["/etc/hostname"]}"#,
            &[],
            400,
        ),
        refused(
            "AE12c",
            r#"{"prompt":"x","image_paths":["D/b.pdf"]}"#,
            &[f("b.pdf", b"%PDF-1.4")],
            400,
        ),
        refused(
            "AE13a",
            r#"{"prompt":"x","images":[{"base64":"AAAA\"}},{\"type\":\"text\",\"text\":\"INJECTED","mime_type":"image/png"}]}"#,
            &[],
            400,
        ),
        refused(
            "AE13b",
            r#"{"prompt":"x","images":[{"base64":"QQ==","mime_type":"text/html"}]}"#,
            &[],
            400,
        ),
        refused(
            "AE14",
            r#"{"messages":[{"role":"assistant","content":"{p}"}],"attachments":{"p":"p.png"}}"#,
            &[f("p.png", b"\x89PNG")],
            400,
        ),
        refused(
            "AE16",
            r#"{"prompt":"hi","backend":"nope","attachments":{"a":"a.txt"}}"#,
            &[f("a.txt", b"a")],
            400,
        ),
    ];
    for name in [".", "", "/etc/passwd", "./b.txt", "x/../b.txt"] {
        list.push(Refused {
            left: vec!["b.txt"],
            ..refused(
                "AE2",
                &format!(
                    r#"{{"prompt":"x","attachments":{{"a":{}}}}}"#,
                    serde_json::to_string(name).unwrap()
                ),
                &[f("b.txt", b"b")],
                400,
            )
        });
    }
    let over_text = vec![b'x'; 1_048_577];
    list.push(refused(
        "AE4",
        r#"{"prompt":"{a}","attachments":{"a":"a.txt"}}"#,
        &[f("a.txt", &over_text)],
        413,
    ));
    let over_binary = vec![0u8; 20_971_521];
    list.push(refused(
        "AE5",
        r#"{"prompt":"{a}","attachments":{"a":"big.png"}}"#,
        &[f("big.png", &over_binary)],
        413,
    ));
    let seventeen = vec![0u8; 17 << 20];
    list.push(refused(
        "AE6",
        r#"{"prompt":"x","attachments":{"a":"a.png","b":"b.png"}}"#,
        &[f("a.png", &seventeen), f("b.png", &seventeen)],
        413,
    ));
    let names: Vec<String> = (0..33).map(|i| format!("f{i}.txt")).collect();
    let refs: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("\"r{i}\":\"{n}\""))
        .collect();
    let mut many = refused(
        "AE7",
        &format!(r#"{{"prompt":"x","attachments":{{{}}}}}"#, refs.join(",")),
        &[],
        413,
    );
    many.files = names.iter().map(|n| (n.clone(), b"t".to_vec())).collect();
    list.push(many);
    list
}

#[test]
fn every_rejection_has_its_status_and_leaves_only_what_it_must() {
    let staging = Staging::new("refusals");
    std::fs::write(staging.base.join("secret.txt"), "outside").unwrap();
    let upstream = upstream_ok("openai", 0);
    let flag = staging.flag();
    let mut d = upstream_daemon_with("att-refusals", "openai", &upstream, &[&flag]);
    let hostname = std::fs::read("/etc/hostname").ok();
    for case in refusals() {
        let files: Vec<(&str, &[u8])> = case
            .files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        staging.stage(&files);
        let response = d.request(&staging.handoff(&case.handoff));
        let (line, headers, body) = parse_response(&response);
        assert!(
            line.starts_with(&format!("HTTP/1.1 {} ", case.status)),
            "{}: {response}",
            case.id
        );
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "Content-Type" && v == "application/json"),
            "{}",
            case.id
        );
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(error["error"].is_string(), "{}: {body}", case.id);
        assert_eq!(staging.left(), case.left, "{}: files left", case.id);
        staging.clear();
    }
    assert!(
        upstream.requests().is_empty(),
        "nothing refused went upstream"
    );
    assert_eq!(
        std::fs::read_to_string(staging.base.join("secret.txt")).unwrap(),
        "outside"
    );
    assert_eq!(std::fs::read("/etc/hostname").ok(), hostname);
    let ended = d.wait_for_log("outcome=bad_attachment", LIMIT);
    assert!(ended.contains("status=400"), "{ended}");
    d.wait_for_log("outcome=unknown_backend", LIMIT);
}

#[test]
fn links_fifos_and_directories_are_refused_and_left_ae10_ae11() {
    let staging = Staging::new("links");
    let upstream = upstream_ok("openai", 0);
    let flag = staging.flag();
    let d = upstream_daemon_with("att-links", "openai", &upstream, &[&flag]);
    let handoff = br#"{"prompt":"{a}","attachments":{"a":"link.txt"}}"#;

    symlink("/etc/hostname", staging.dir.join("link.txt")).unwrap();
    assert_eq!(status(&d.request(handoff)), "HTTP/1.1 400 Bad Request");
    assert_eq!(staging.left(), ["link.txt"]);
    staging.clear();

    staging.stage(&[f("t.png", b"\x89PNG")]);
    symlink(staging.dir.join("t.png"), staging.dir.join("link.txt")).unwrap();
    assert_eq!(status(&d.request(handoff)), "HTTP/1.1 400 Bad Request");
    assert_eq!(staging.left(), ["link.txt", "t.png"]);
    staging.clear();

    // A directory swapped for a link: nothing beneath it is reached.
    symlink("/etc", staging.dir.join("sub")).unwrap();
    let response = d.request(br#"{"prompt":"{a}","attachments":{"a":"sub/hostname.txt"}}"#);
    assert_eq!(status(&response), "HTTP/1.1 400 Bad Request");
    assert_eq!(staging.left(), ["sub"]);
    staging.clear();

    let fifo = staging.dir.join("f.txt");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: (test) mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let fifo_handoff = br#"{"prompt":"{a}","attachments":{"a":"f.txt"}}"#;
    assert_eq!(status(&d.request(fifo_handoff)), "HTTP/1.1 400 Bad Request");
    assert_eq!(staging.left(), ["f.txt"]);
    staging.clear();

    std::fs::create_dir(staging.dir.join("f.txt")).unwrap();
    assert_eq!(status(&d.request(fifo_handoff)), "HTTP/1.1 400 Bad Request");
    assert_eq!(staging.left(), ["f.txt/"]);
    assert!(upstream.requests().is_empty());
}

#[test]
fn limits_hold_at_the_byte_and_a_20_mb_body_arrives_intact() {
    for kind in [Kind::Plain, Kind::Tls] {
        let tls = matches!(kind, Kind::Tls);
        let staging = Staging::new(if tls { "big-tls" } else { "big" });
        let upstream = FakeUpstream::start(
            kind,
            (0..2)
                .map(|_| ok_stream(&[&delta("\"ok\""), DONE_EVENT]))
                .collect(),
        );
        let flag = staging.flag();
        let ca = certs_dir().join("ca.pem");
        let base = format!("{}/v1", upstream.base);
        let args = ["-backend", "openai", "-openai-base", &base, &flag];
        let env = [("SSL_CERT_FILE", ca.to_str().unwrap())];
        let d = Daemon::start_with_env(temp_socket_path("att-big"), &args, &env);

        // AE4's edge: exactly 1 MiB of text is accepted.
        staging.stage(&[("a.txt", &vec![b'x'; 1_048_576])]);
        let response = d.request(br#"{"prompt":"{a}","attachments":{"a":"a.txt"}}"#);
        assert!(response.starts_with(SSE_HEAD), "{response}");
        let body: Value = serde_json::from_str(&upstream.requests()[0].body).unwrap();
        assert_eq!(
            target_content(&body).as_str().map(str::len),
            Some(1_048_576)
        );

        // AE5's edge: 20,971,520 bytes of image, streamed from the file as it is encoded.
        let image = pseudo_random(20_971_520);
        staging.stage(&[f("big.png", &image)]);
        let response = d.request(br#"{"prompt":"what is this?","attachments":{"p":"big.png"}}"#);
        assert!(response.starts_with(SSE_HEAD), "{response}");
        assert!(response.ends_with("data: [DONE]\n\n"));
        let request = &upstream.requests()[1];
        let length: usize = request.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, request.body.len());
        let body: Value = serde_json::from_str(&request.body).unwrap();
        let url = target_content(&body)[0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        let encoded = url.strip_prefix("data:image/png;base64,").unwrap();
        let decoded = decode_base64(encoded);
        assert_eq!(decoded.len(), image.len());
        assert_eq!(fnv(&decoded), fnv(&image), "the image arrived intact");
        assert!(staging.left().is_empty());
    }
}

#[test]
fn files_are_off_with_an_empty_data_dir_ae15() {
    let d = Daemon::start("att-off", &["-backend", "mock", "-data-dir="]);
    let response = d.request(br#"{"prompt":"{a}","attachments":{"a":"a.txt"}}"#);
    assert_eq!(status(&response), "HTTP/1.1 400 Bad Request");
    // Inline images need no directory.
    let response = d.request(br#"{"prompt":"x","images":[{"base64":"QQ=="}]}"#);
    assert!(response.starts_with(SSE_HEAD), "{response}");
}

#[test]
fn files_are_deleted_when_refused_for_capacity_or_an_upstream_error_ae16() {
    let staging = Staging::new("capacity");
    let flag = staging.flag();
    let d = Daemon::start(
        "att-capacity",
        &[
            "-backend",
            "mock",
            "-message-delay=5s",
            "-max-connections=1",
            &flag,
        ],
    );
    let held = d.open_stream();
    staging.stage(&[f("a.txt", b"a")]);
    let response = d.request(br#"{"prompt":"hi","attachments":{"a":"a.txt"}}"#);
    assert_eq!(status(&response), "HTTP/1.1 503 Service Unavailable");
    assert!(
        staging.left().is_empty(),
        "deleted though refused before any check"
    );
    drop(held);

    // The upstream fails after the files were taken: they are gone all the same.
    let upstream = FakeUpstream::start(
        Kind::Plain,
        vec![vec![send(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops",
        )]],
    );
    let staging = Staging::new("upstream-error");
    let flag = staging.flag();
    let d = upstream_daemon_with("att-upstream-error", "openai", &upstream, &[&flag]);
    staging.stage(&[f("p.png", b"\x89PNG"), f("n.txt", b"notes")]);
    let response = d.request(br#"{"prompt":"{n}","attachments":{"n":"n.txt","p":"p.png"}}"#);
    assert_eq!(status(&response), "HTTP/1.1 502 Bad Gateway");
    assert!(staging.left().is_empty());
}

#[test]
fn a_ref_given_twice_deletes_both_files_even_when_refused() {
    let staging = Staging::new("twice");
    let flag = staging.flag();
    let d = Daemon::start("att-twice", &["-backend", "mock", &flag]);
    staging.stage(&[f("one.txt", b"ONE"), f("two.bmp", b"BM")]);
    // The last `a` (an unknown type) refuses; the first is deleted as well.
    let response = d.request(
        br#"{"prompt":"{a}","attachments":{"a":"one.txt"},"attachments":{"a":"two.bmp"}}"#,
    );
    assert_eq!(status(&response), "HTTP/1.1 400 Bad Request");
    assert!(staging.left().is_empty(), "{:?}", staging.left());
    // Data that is refused as a whole still has its files deleted.
    staging.stage(&[f("x.txt", b"x")]);
    let response = d.request(br#"{"prompt":5,"attachments":{"a":"x.txt"}}"#);
    assert_eq!(status(&response), "HTTP/1.1 400 Bad Request");
    assert!(staging.left().is_empty());
}

#[test]
fn a_handoff_over_the_unix_socket_type_is_checked_the_same() {
    let staging = Staging::new("seqpacket");
    let flag = staging.flag();
    let socket = temp_socket_path("att-seq");
    let d = Daemon::start_at(
        socket.clone(),
        &["-backend", "mock", "-socket-type=seqpacket", &flag],
    );
    staging.stage(&[f("a.bmp", b"BM")]);
    let (mut client, server) = tcp_pair();
    hand_off(
        &d.socket,
        SocketType::SeqPacket,
        br#"{"prompt":"{a}","attachments":{"a":"a.bmp"}}"#,
        &server,
    );
    drop(server);
    let response = read_to_end(&mut client, LIMIT);
    assert_eq!(status(&response), "HTTP/1.1 400 Bad Request");
    assert!(staging.left().is_empty());
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {other}"),
        }
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for group in text.as_bytes().chunks(4) {
        let pad = group.iter().filter(|&&c| c == b'=').count();
        let n = group
            .iter()
            .map(|&c| if c == b'=' { 0 } else { value(c) })
            .fold(0u32, |n, v| (n << 6) | v);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}
