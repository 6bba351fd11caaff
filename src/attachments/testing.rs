//! Test helpers: a temporary data directory that cleans up after itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "sd-attach-{}-{}-{label}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("temp dir is writable");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` (parents created).
    pub fn write(&self, name: &str, content: &[u8]) {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent created");
        }
        std::fs::write(path, content).expect("file written");
    }

    /// A sparse file of `size` bytes: large files without writing them.
    pub fn sized(&self, name: &str, size: u64) {
        let file = std::fs::File::create(self.0.join(name)).expect("file created");
        file.set_len(size).expect("size set");
    }

    pub fn mkdir(&self, name: &str) {
        std::fs::create_dir_all(self.0.join(name)).expect("dir created");
    }

    pub fn mkfifo(&self, name: &str) {
        crate::sys::at::mkfifo(&self.0.join(name), 0o600).expect("FIFO made");
    }

    pub fn exists(&self, name: &str) -> bool {
        self.0.join(name).exists()
    }

    /// True for a dangling link too.
    pub fn exists_nofollow(&self, name: &str) -> bool {
        std::fs::symlink_metadata(self.0.join(name)).is_ok()
    }

    /// Every name left in the directory, recursively, sorted (directories end with `/`).
    pub fn listing(&self) -> Vec<String> {
        let mut names = Vec::new();
        list(&self.0, "", &mut names);
        names.sort();
        names
    }
}

fn list(dir: &Path, prefix: &str, names: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("listable").flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            names.push(format!("{name}/"));
            list(&entry.path(), &format!("{name}/"), names);
        } else {
            names.push(name);
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use super::{
    check, find_target, AttachmentRequest, Body, BodyPlan, Checked, Content, DataDir, DirAccess,
    Flavour, InlineImage, Limits, Loading, MessageView, Method, Refusal, Warning, SLICE,
};
use serde_json::Value;

/// The default `max_attachment_bytes`.
pub const MAX_TOTAL: u64 = 32 << 20;

/// The attachment keys, messages and prompt of a handoff written as JSON, for tests (the real
/// parser lives in `handoff`). Duplicate keys cannot be written this way: build those by hand.
pub struct Handoff {
    pub request: AttachmentRequest,
    /// (role, content when a string)
    pub messages: Vec<(String, Option<String>)>,
    pub prompt: String,
}

fn string(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

impl Handoff {
    /// Parses `json`, with every `"D/` replaced by the data directory's path.
    pub fn parse(json: &str, dir: &Path) -> Handoff {
        let json = json.replace("\"D/", &format!("\"{}/", dir.display()));
        let value: Value = serde_json::from_str(&json).expect("test JSON");
        let mut request = AttachmentRequest::default();
        let pairs = |key: &str| -> Vec<(String, String)> {
            value
                .get(key)
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), string(v))).collect())
                .unwrap_or_default()
        };
        request.attachments = pairs("attachments");
        request.attachment_types = pairs("attachment_types");
        if let Some(images) = value.get("images").and_then(Value::as_array) {
            request.images = images
                .iter()
                .map(|i| InlineImage {
                    base64: string(&i["base64"]),
                    mime_type: i.get("mime_type").map(string),
                })
                .collect();
        }
        request.image_base64 = value.get("image_base64").map(string);
        request.image_mime_type = value.get("image_mime_type").map(string);
        request.image_path = value.get("image_path").map(string);
        if let Some(paths) = value.get("image_paths").and_then(Value::as_array) {
            request.image_paths = paths.iter().map(string).collect();
        }
        let messages = value
            .get("messages")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .map(|m| {
                        (
                            string(&m["role"]),
                            m["content"].as_str().map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let prompt = value.get("prompt").map(string).unwrap_or_default();
        Handoff {
            request,
            messages,
            prompt,
        }
    }

    /// Chooses the target and checks the attachments against `dir`.
    pub fn check(&self, dir: DirAccess<'_>, max_total: u64) -> Result<Checked, Refusal> {
        let views: Vec<MessageView<'_>> = self
            .messages
            .iter()
            .map(|(role, text)| MessageView {
                role,
                text: text.as_deref(),
            })
            .collect();
        check(
            &self.request,
            find_target(&views, &self.prompt),
            dir,
            Limits { max_total },
        )
    }
}

/// Reads every text file, a slice at a time.
pub fn load_all(checked: &mut Checked) -> Result<(), Refusal> {
    for _ in 0..10_000 {
        if checked.load(SLICE)? == Loading::Done {
            return Ok(());
        }
    }
    panic!("loading never finished");
}

/// Every byte of `body`, produced a slice at a time.
pub fn drain(body: &mut Body) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        if body.fill_vec(&mut out, SLICE)? == 0 {
            assert!(body.is_done());
            assert_eq!(out.len() as u64, body.len());
            return Ok(out);
        }
    }
    panic!("the body never ended");
}

/// The content as the JSON text a request body would hold.
pub fn render(content: &Content) -> String {
    let mut plan = BodyPlan::new();
    plan.push_content(content);
    let mut body = plan.finish();
    String::from_utf8(drain(&mut body).expect("readable")).expect("UTF-8")
}

/// What one handoff gives: the content JSON (`None`: nothing attached) and the warnings.
pub struct Outcome {
    pub content: Option<String>,
    pub sent: usize,
    pub warnings: Vec<Warning>,
}

/// Stages `files` in a fresh directory, runs `json` through check, load and content for
/// `flavour`, and returns what came out with what is left in the directory.
pub fn run(
    json: &str,
    files: &[(&str, &[u8])],
    flavour: Flavour,
) -> (Result<Outcome, Refusal>, Vec<String>) {
    run_with(json, files, flavour, Method::Openat2)
}

/// As [`run`], with names opened by `method`.
pub fn run_with(
    json: &str,
    files: &[(&str, &[u8])],
    flavour: Flavour,
    method: Method,
) -> (Result<Outcome, Refusal>, Vec<String>) {
    let temp = TempDir::new("run");
    for (name, content) in files {
        temp.write(name, content);
    }
    let (dir, _) = DataDir::open_with(temp.path(), Some(method)).expect("opened");
    let handoff = Handoff::parse(json, temp.path());
    let result = run_handoff(&handoff, &dir, flavour);
    (result, temp.listing())
}

pub fn run_handoff(handoff: &Handoff, dir: &DataDir, flavour: Flavour) -> Result<Outcome, Refusal> {
    let mut checked = handoff.check(DirAccess::Open(dir), MAX_TOTAL)?;
    let mut warnings = checked.take_warnings();
    if flavour != Flavour::Local {
        load_all(&mut checked)?;
    }
    warnings.extend(checked.take_warnings());
    Ok(match checked.into_content(flavour) {
        None => Outcome {
            content: None,
            sent: 0,
            warnings,
        },
        Some((content, more)) => {
            warnings.extend(more);
            Outcome {
                content: Some(render(&content)),
                sent: content.sent(),
                warnings,
            }
        }
    })
}
