//! A handoff's attachments as the connection deals with them (SPEC §4.5): the handoff parsed,
//! the target message found, `attachments::check` on a real data directory with files staged
//! in it, the texts loaded a slice at a time, the content shaped for a backend, and the
//! upstream request written around it and streamed out. This is where file names, types,
//! placeholders and inline image data from the client meet the file system.
//!
//! Each input gets a fresh directory `D` (under the system temp directory) holding a fixed set
//! of files, a symbolic link and, beside `D`, a file that must never be touched. `@D` in the
//! input stands for `D`'s path, so `image_paths` seeds can name files in it.
//!
//! - Every staged file the handoff names is deleted, whether it was accepted or refused; the
//!   file outside `D` is left as it was.
//! - A refusal is a 400, 413 or 500 with a complete error response.
//! - An accepted handoff loads in a bounded number of slices; the request built for the openai
//!   or langgraph backend (chosen by the input) is one complete `POST` whose `Content-Length`
//!   is exactly what its streamed body gives, and the body is a JSON object.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use streaming_daemon::attachments::{
    check as check_attachments, discard, find_target, AttachmentRequest, DataDirSlot, Flavour,
    Limits, Loading, MessageView, SLICE,
};
use streaming_daemon::backends::upstream::{Origin, RequestBytes};
use streaming_daemon::backends::{langgraph, openai, Attached};
use streaming_daemon::config::{Config, ContentFormat};
use streaming_daemon::handoff::{parse_handoff, HandoffData};
use streaming_daemon::http::{error_response, ErrorStatus};

use super::wire::{complete_response, fnv, json_post};

/// The regular files staged in `D` for every input.
const STAGED: &[(&str, &[u8])] = &[
    ("a.txt", b"A"),
    ("n.md", b"# T"),
    ("c.csv", b"a,b\n1,2\n"),
    ("x.bin", b"hello"),
    ("bad.txt", b"a\xff"),
    ("p.png", b"\x89PNG"),
    ("q.jpg", b"JJ"),
    ("r.pdf", b"%PDF-1.4"),
    ("sub/b.webp", b"RIFF"),
];
const OUTSIDE: &[u8] = b"outside the data directory";
/// Slices one handoff may take to load: far more than its files can need.
const MAX_TURNS: usize = 10_000;

/// Tells the directories of concurrent checks apart (the replay test runs several at once).
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory holding `D`, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let base =
            std::env::temp_dir().join(format!("sd-fuzz-attachments-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("a scratch directory");
        std::fs::write(base.join("outside.txt"), OUTSIDE).expect("the outside file");
        Scratch(base)
    }

    fn data_dir(&self) -> PathBuf {
        self.0.join("D")
    }

    /// Stages the files in `D`, which the data directory slot created.
    fn stage(&self) {
        let dir = self.data_dir();
        std::fs::create_dir_all(dir.join("sub")).expect("D/sub");
        for (name, bytes) in STAGED {
            std::fs::write(dir.join(name), bytes).expect("a staged file");
        }
        std::os::unix::fs::symlink("../outside.txt", dir.join("link.txt")).expect("a link");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn check(data: &[u8]) {
    let scratch = Scratch::new();
    let dir = scratch.data_dir();
    let input = replace(data, b"@D", dir.as_os_str().as_encoded_bytes());
    let now = Instant::now();
    let (slot, opened) = DataDirSlot::open(Some(&dir), now);
    opened.expect("the data directory opens");
    scratch.stage();

    // A small total limit sometimes, so that 413 is reachable with small files.
    let limits = Limits {
        max_total: if fnv(data).is_multiple_of(3) {
            16
        } else {
            1 << 20
        },
    };
    let parsed = parse_handoff(&input);
    match &parsed.data {
        Ok(handoff) => {
            let wanted = AttachmentRequest::from_handoff(handoff);
            let checked = {
                let messages = MessageView::all(handoff);
                let target = find_target(&messages, &handoff.prompt);
                check_attachments(&wanted, target, slot.access(), limits)
            };
            let leftovers = AttachmentRequest::leftovers(&parsed.staged, Some(&wanted));
            discard(&leftovers, slot.access());
            match checked {
                Ok(mut checked) => {
                    let mut turns = 0;
                    let loaded = loop {
                        match checked.load(SLICE) {
                            Ok(Loading::Done) => break Ok(()),
                            Ok(Loading::More) => {
                                turns += 1;
                                assert!(turns < MAX_TURNS, "loading never ends");
                            }
                            Err(refusal) => break Err(refusal),
                        }
                    };
                    match loaded {
                        Ok(()) => send(handoff, checked, fnv(data)),
                        Err(refusal) => refused(refusal.error.status()),
                    }
                }
                Err(refusal) => refused(refusal.error.status()),
            }
        }
        Err(_) => {
            discard(
                &AttachmentRequest::leftovers(&parsed.staged, None),
                slot.access(),
            );
        }
    }

    let named = parsed.staged.attachments.iter().cloned().chain(
        parsed.staged.image_paths.iter().filter_map(|path| {
            let rest = path.strip_prefix(dir.to_str()?)?.strip_prefix('/')?;
            Some(rest.to_string())
        }),
    );
    for name in named {
        if STAGED.iter().any(|(staged, _)| *staged == name) {
            assert!(
                !dir.join(&name).exists(),
                "{name} was named and is still there"
            );
        }
    }
    assert_eq!(
        std::fs::read(scratch.0.join("outside.txt")).ok().as_deref(),
        Some(OUTSIDE),
        "the file outside the data directory changed"
    );
}

fn refused(status: ErrorStatus) {
    assert!(
        matches!(status.code(), 400 | 413 | 500),
        "status {}",
        status.code()
    );
    let bytes = error_response(status, "refused", None);
    assert_eq!(complete_response(&bytes, false).status, status.code());
}

/// Shapes the content for one backend (picked by `pick`) and writes its request out.
fn send(handoff: &HandoffData, checked: streaming_daemon::attachments::Checked, pick: u64) {
    let config = Config::default();
    let flavour = match pick % 4 {
        0 => Flavour::OpenAi,
        1 => Flavour::LangGraph(ContentFormat::OpenAi),
        2 => Flavour::LangGraph(ContentFormat::Anthropic),
        _ => Flavour::Local,
    };
    let target = checked.target_index();
    let Some((content, _warnings)) = checked.into_content(flavour) else {
        return;
    };
    let attached = Attached { target, content };
    let built = match flavour {
        Flavour::OpenAi => {
            let settings = &config.backend.openai;
            let origin = Origin::parse(&settings.api_base, None).expect("the default base");
            openai::build_request(
                settings,
                &config.backend.default_model,
                &origin,
                handoff,
                Some(&attached),
            )
            .map_err(|error| error.to_string())
        }
        Flavour::LangGraph(format) => {
            let mut profile = config.backend.langgraph.default_profile();
            profile.content_format = format;
            let origin = Origin::parse(&profile.api_base, None).expect("the default base");
            langgraph::build_request(&profile, &origin, handoff, Some(&attached), &mut Vec::new())
                .map_err(|error| error.to_string())
        }
        Flavour::Local => return,
    };
    match built {
        Ok(request) => well_formed(request),
        // Only what the handoff may get wrong in a header or a path.
        Err(_) => assert!(handoff.test_pattern.is_some() || handoff.thread_id.is_some()),
    }
}

/// The head and the whole streamed body: one `POST` whose `Content-Length` frames a JSON
/// object, and exactly as long as the streamed body said.
fn well_formed(request: RequestBytes) {
    let RequestBytes {
        bytes: mut whole,
        streamed,
    } = request;
    let head_len = whole.len();
    if let Some(mut body) = streamed {
        let announced = body.len();
        let mut turns = 0;
        while !body.is_done() {
            body.fill_vec(&mut whole, SLICE).unwrap_or_else(|refusal| {
                panic!("a checked file failed: {}", refusal.log_detail())
            });
            turns += 1;
            assert!(turns < MAX_TURNS, "the body never ends");
        }
        assert_eq!(whole.len() - head_len, announced as usize, "Body::len");
    }
    json_post(&whole);
}

/// `data` with every `from` replaced by `to`.
fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
