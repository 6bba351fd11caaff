//! Checking a handoff's attachments, opening and deleting its files (SPEC §4.5 "Order",
//! "Limits", "Deletion"), and reading its text files.
//!
//! | step | what                                                      | first failure            |
//! |------|-----------------------------------------------------------|--------------------------|
//! | 1    | a target message with text content                        | 400                      |
//! | 2    | `data_dir` (only when files are named)                    | off 400, not open 500    |
//! | 3    | every name: `attachments` by ref, `image_paths`, `image_path` | 400                  |
//! | 4    | at most 32 files                                          | 413                      |
//! | 5    | inline images: base64, type, bytes toward the total       | 400 / 413                |
//! | 6    | each file in step 3's order: open (and delete), type, size, total | 400 / 413        |
//! | 7    | [`Checked::load`]: text files read, UTF-8                 | 400, changed size 500    |
//!
//! After a failure the remaining steps decide nothing, but step 6 still opens every remaining
//! valid name, by the same rules, only to delete it. Nothing is read before step 7, and step 7
//! runs only for backends that send content.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;

use super::base64::decoded_len;
use super::content::{self, Data, Flavour, Source};
use super::dir::{DataDir, DirAccess};
use super::error::{AttachmentError, FileLabel, ImageLabel, Refusal, Warning};
use super::files::{Files, OpenFile};
use super::names::{image_path_name, is_relative_name, last_component};
use super::open::{open_and_delete, Opened};
use super::request::{AttachmentRequest, Target};
use super::types::{self, Class};
use super::{Content, MAX_FILES};
use crate::sys::at;

/// The per-request limit that comes from configuration; the others are fixed (SPEC §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `server.max_attachment_bytes`: file bytes plus decoded inline image bytes.
    pub max_total: u64,
}

/// Default type of an inline image.
const DEFAULT_IMAGE_TYPE: &str = "image/jpeg";

/// One name, in checking order.
struct Entry<'r> {
    label: FileLabel,
    /// What the handoff gave, for the log.
    given: &'r str,
    /// The name under `data_dir`; `None` when the value is not an acceptable name.
    name: Option<&'r str>,
    use_: Use<'r>,
}

enum Use<'r> {
    /// An `attachments` entry, and its `attachment_types` entry.
    Attachment {
        r#ref: &'r str,
        override_: Option<&'r str>,
    },
    /// An `image_path(s)` file.
    Image,
    /// An `attachments` entry for a ref given again later: deleted, never used.
    Shadowed,
}

/// Every name the handoff gives, in checking order: `attachments` by ref (bytewise), then
/// `image_paths`, then `image_path`. Image paths are only names when `dir` is open.
fn entries<'r>(request: &'r AttachmentRequest, dir: Option<&DataDir>) -> Vec<Entry<'r>> {
    let overrides: HashMap<&str, &str> = request
        .attachment_types
        .iter()
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    let mut order: Vec<&(String, String)> = request.attachments.iter().collect();
    // Stable: among equal refs the handoff's order stays, so the effective one is last.
    order.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut list = Vec::with_capacity(order.len() + request.image_paths.len() + 1);
    for (i, (r, name)) in order.iter().enumerate() {
        let shadowed = order.get(i + 1).is_some_and(|next| next.0 == *r);
        list.push(Entry {
            label: FileLabel::Attachment(r.clone()),
            given: name,
            name: is_relative_name(name).then_some(name.as_str()),
            use_: if shadowed {
                Use::Shadowed
            } else {
                Use::Attachment {
                    r#ref: r,
                    override_: overrides.get(r.as_str()).copied(),
                }
            },
        });
    }
    let image_name =
        |value: &'r str| dir.and_then(|d| image_path_name(value, d.configured(), d.canonical()));
    for (i, value) in request.image_paths.iter().enumerate() {
        list.push(Entry {
            label: FileLabel::ImagePaths(i),
            given: value,
            name: image_name(value),
            use_: Use::Image,
        });
    }
    if let Some(value) = request.image_path() {
        list.push(Entry {
            label: FileLabel::ImagePath,
            given: value,
            name: image_name(value),
            use_: Use::Image,
        });
    }
    list
}

/// The first failure, and what went wrong along the way.
#[derive(Default)]
struct Run {
    failure: Option<Refusal>,
    warnings: Vec<Warning>,
}

impl Run {
    fn fail(&mut self, refusal: Refusal) {
        if self.failure.is_none() {
            self.failure = Some(refusal);
        }
    }

    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    fn opened(&mut self, entry: &Entry<'_>, name: &str, opened: &Opened) {
        if let Opened::File {
            deleted: Err(error),
            ..
        } = opened
        {
            self.warnings.push(Warning::NotDeleted {
                file: entry.label.clone(),
                name: name.to_string(),
                error: io::Error::new(error.kind(), error.to_string()),
            });
        }
    }
}

/// A file that opened and passed its checks.
#[derive(Debug)]
struct Attached {
    r#ref: String,
    name: String,
    /// Index into `Checked::files`.
    file: usize,
    mime: String,
    class: Class,
    size: u64,
    /// Text files, once loaded.
    text: Option<String>,
}

#[derive(Debug)]
enum Image {
    Inline {
        mime: String,
        base64: String,
    },
    File {
        mime: &'static str,
        file: usize,
        size: u64,
    },
}

/// What [`Checked::load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    /// Every text file is read; [`Checked::into_content`] may be called.
    Done,
    /// The budget ran out; call again (next loop turn).
    More,
}

/// A handoff's attachments after every check passed: the open (already deleted) files, the
/// inline images and the target message's text. Dropping it closes the files.
#[derive(Debug, Default)]
pub struct Checked {
    /// `Some` when the handoff attaches anything: the target message (`None`: the prompt's)
    /// and its text.
    target: Option<(Option<usize>, String)>,
    /// Files of `attachments` that opened and passed, in ref order.
    attachments: Vec<Attached>,
    /// Inline images in order, then `image_paths` files, `image_path` last.
    images: Vec<Image>,
    files: Vec<OpenFile>,
    warnings: Vec<Warning>,
    /// Loading: the attachment being read and what was read of it.
    cursor: usize,
    partial: Vec<u8>,
}

/// Checks `request`'s attachments against `target` and the directory, opening and deleting
/// every file it names (SPEC §4.5). On refusal every file has been dealt with too: the caller
/// only answers.
pub fn check(
    request: &AttachmentRequest,
    target: Target,
    dir: DirAccess<'_>,
    limits: Limits,
) -> Result<Checked, Refusal> {
    if !request.attaches_anything() {
        return Ok(Checked::default());
    }
    let mut run = Run::default();
    let target = match target {
        Target::Message { index, text } => Some((Some(index), text)),
        Target::Prompt { text } => Some((None, text)),
        Target::NoUserMessage => {
            run.fail(Refusal::new(AttachmentError::NoUserMessage));
            None
        }
        Target::PartsArray { .. } => {
            run.fail(Refusal::new(AttachmentError::TargetIsParts));
            None
        }
    };
    let open_dir = match dir {
        DirAccess::Open(dir) => Some(dir),
        DirAccess::Off | DirAccess::Unavailable => None,
    };
    if request.names_files() {
        match dir {
            DirAccess::Off => run.fail(Refusal::new(AttachmentError::FilesOff)),
            DirAccess::Unavailable => run.fail(Refusal::new(AttachmentError::DirUnavailable)),
            DirAccess::Open(_) => {}
        }
    }
    let entries = entries(request, open_dir);
    for entry in &entries {
        match (&entry.use_, entry.name) {
            (_, Some(_)) | (Use::Shadowed, None) => {}
            (Use::Attachment { .. }, None) => run.fail(Refusal::file(
                AttachmentError::BadName(entry.label.clone()),
                entry.given,
            )),
            (Use::Image, None) => run.fail(Refusal::file(
                AttachmentError::BadImagePath(entry.label.clone()),
                entry.given,
            )),
        }
    }
    let count = entries
        .iter()
        .filter(|e| !matches!(e.use_, Use::Shadowed))
        .count();
    if count > MAX_FILES {
        run.fail(Refusal::new(AttachmentError::TooManyFiles { count }));
    }

    let mut checked = Checked {
        target,
        ..Checked::default()
    };
    let mut total = 0u64;
    checked.inline_images(request, &mut run, &mut total, limits);
    if let Some(dir) = open_dir {
        for entry in &entries {
            let Some(name) = entry.name else { continue };
            let opened = open_and_delete(dir, name);
            run.opened(entry, name, &opened);
            if !run.failed() {
                checked.accept(entry, name, opened, &mut run, &mut total, limits);
            }
        }
    }
    match run.failure {
        Some(mut refusal) => {
            refusal.warnings = run.warnings;
            Err(refusal)
        }
        None => {
            checked.warnings = run.warnings;
            Ok(checked)
        }
    }
}

/// Deletes every file `request` names, by the same rules as [`check`], checking nothing else:
/// for a handoff refused for another reason (a bad `backend`, a 503). Returns the warnings.
pub fn discard(request: &AttachmentRequest, dir: DirAccess<'_>) -> Vec<Warning> {
    let mut run = Run::default();
    if let DirAccess::Open(dir) = dir {
        for entry in entries(request, Some(dir)) {
            if let Some(name) = entry.name {
                let opened = open_and_delete(dir, name);
                run.opened(&entry, name, &opened);
            }
        }
    }
    run.warnings
}

impl Checked {
    fn inline_images(
        &mut self,
        request: &AttachmentRequest,
        run: &mut Run,
        total: &mut u64,
        limits: Limits,
    ) {
        let given = request
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                (
                    ImageLabel::Images(i),
                    image.base64.as_str(),
                    &image.mime_type,
                )
            })
            .chain(
                request
                    .image_base64()
                    .map(|b| (ImageLabel::ImageBase64, b, &request.image_mime_type)),
            );
        for (label, base64, mime) in given {
            if run.failed() {
                return;
            }
            let Some(bytes) = decoded_len(base64.as_bytes()) else {
                run.fail(Refusal::new(AttachmentError::BadBase64(label)));
                return;
            };
            let mime = mime
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or(DEFAULT_IMAGE_TYPE);
            if !types::is_allowed_image(mime) {
                run.fail(Refusal::new(AttachmentError::BadImageType(label)));
                return;
            }
            *total = total.saturating_add(bytes);
            if *total > limits.max_total {
                run.fail(Refusal::new(AttachmentError::OverTotal {
                    limit: limits.max_total,
                }));
                return;
            }
            self.images.push(Image::Inline {
                mime: mime.to_string(),
                base64: base64.to_string(),
            });
        }
    }

    /// Type, size and total checks for one opened name; keeps the file when it passes.
    fn accept(
        &mut self,
        entry: &Entry<'_>,
        name: &str,
        opened: Opened,
        run: &mut Run,
        total: &mut u64,
        limits: Limits,
    ) {
        if matches!(entry.use_, Use::Shadowed) {
            // Only deleted: a ref given again later is the one that counts.
            return;
        }
        let refuse = |run: &mut Run, error, os_error| {
            let mut refusal = Refusal::file(error, name);
            refusal.os_error = os_error;
            run.fail(refusal);
        };
        let label = || entry.label.clone();
        let (fd, size) = match opened {
            Opened::File { fd, size, .. } => (fd, size),
            Opened::Missing(error) | Opened::Unreadable(error) => {
                run.warnings.push(Warning::Skipped {
                    file: label(),
                    name: name.to_string(),
                    error,
                });
                return;
            }
            Opened::Symlink(error) => {
                return refuse(run, AttachmentError::Symlink(label()), Some(error))
            }
            Opened::Escape(error) => {
                return refuse(run, AttachmentError::Escape(label()), Some(error))
            }
            Opened::NotRegular => return refuse(run, AttachmentError::NotRegular(label()), None),
        };
        let mime = match entry.use_ {
            Use::Shadowed => return,
            Use::Attachment { override_, .. } => match override_ {
                Some(given) => match types::from_override(given) {
                    Some(mime) => mime.to_string(),
                    None => return refuse(run, AttachmentError::EmptyType(label()), None),
                },
                None => match types::from_extension(name) {
                    Some(mime) => mime.to_string(),
                    None => return refuse(run, AttachmentError::UnknownType(label()), None),
                },
            },
            Use::Image => {
                match types::from_extension(name).filter(|m| types::is_allowed_image(m)) {
                    Some(mime) => mime.to_string(),
                    None => return refuse(run, AttachmentError::NotImage(label()), None),
                }
            }
        };
        let class = types::class(&mime);
        if size > class.limit() {
            let limit = class.limit();
            return refuse(
                run,
                AttachmentError::TooLarge {
                    file: label(),
                    limit,
                },
                None,
            );
        }
        *total = total.saturating_add(size);
        if *total > limits.max_total {
            let limit = limits.max_total;
            return refuse(run, AttachmentError::OverTotal { limit }, None);
        }
        let file = self.files.len();
        self.files.push(OpenFile { fd, label: label() });
        match entry.use_ {
            Use::Attachment { r#ref, .. } => self.attachments.push(Attached {
                r#ref: r#ref.to_string(),
                name: name.to_string(),
                file,
                mime,
                class,
                size,
                text: None,
            }),
            Use::Image => {
                let mime = types::from_extension(name).unwrap_or(DEFAULT_IMAGE_TYPE);
                self.images.push(Image::File { mime, file, size });
            }
            Use::Shadowed => {}
        }
    }

    /// True when the handoff attached nothing: the messages go upstream unchanged.
    pub fn is_empty(&self) -> bool {
        self.target.is_none()
    }

    /// The message attachments go into: `Some(i)` for `messages[i]`, `None` for the message
    /// made from `prompt`. Meaningless when [`Checked::is_empty`].
    pub fn target_index(&self) -> Option<usize> {
        self.target.as_ref().and_then(|(index, _)| *index)
    }

    /// Files that opened and passed, plus inline images: what a local backend ignored.
    pub fn count(&self) -> usize {
        self.attachments.len() + self.images.len()
    }

    /// Warnings so far (skipped files, files not deleted); log each kind once per connection.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// Bytes held: text read so far, inline image data, the target text.
    pub fn held_bytes(&self) -> usize {
        let texts: usize = self
            .attachments
            .iter()
            .filter_map(|a| a.text.as_ref())
            .map(String::capacity)
            .sum();
        let images: usize = self
            .images
            .iter()
            .map(|i| match i {
                Image::Inline { mime, base64 } => mime.capacity() + base64.capacity(),
                Image::File { .. } => 0,
            })
            .sum();
        let target = self.target.as_ref().map_or(0, |(_, t)| t.capacity());
        texts + images + target + self.partial.capacity()
    }

    /// Reads text files, at most `budget` bytes per call (one call per loop turn keeps the loop
    /// responsive), and checks each is UTF-8 and still the size it was checked at. Only for
    /// backends that send content. A file that cannot be read is skipped with a warning.
    pub fn load(&mut self, budget: usize) -> Result<Loading, Refusal> {
        let mut budget = budget.max(1);
        while let Some(attached) = self.attachments.get_mut(self.cursor) {
            if attached.class != Class::Text || attached.text.is_some() {
                self.cursor += 1;
                continue;
            }
            let file = &self.files[attached.file];
            let filled = self.partial.len();
            let size = usize::try_from(attached.size).unwrap_or(usize::MAX);
            let changed = |attached: &Attached, os_error| {
                let mut refusal = Refusal::file(
                    AttachmentError::Changed(FileLabel::Attachment(attached.r#ref.clone())),
                    &attached.name,
                );
                refusal.os_error = os_error;
                refusal
            };
            let result = if filled < size {
                if budget == 0 {
                    return Ok(Loading::More);
                }
                if self.partial.capacity() == 0 {
                    self.partial.reserve_exact(size);
                }
                let want = (size - filled).min(budget);
                self.partial.resize(filled + want, 0);
                let read = at::pread(file.fd.as_fd(), &mut self.partial[filled..], filled as u64);
                match read {
                    Ok(0) => return Err(changed(attached, None)),
                    Ok(n) => {
                        self.partial.truncate(filled + n);
                        budget = budget.saturating_sub(n);
                        continue;
                    }
                    Err(error) => Err(error),
                }
            } else {
                // Whole: one more byte would mean it grew.
                let mut probe = [0u8; 1];
                match at::pread(file.fd.as_fd(), &mut probe, attached.size) {
                    Ok(0) => Ok(()),
                    Ok(_) => return Err(changed(attached, None)),
                    Err(error) => Err(error),
                }
            };
            match result {
                Ok(()) => {
                    let bytes = std::mem::take(&mut self.partial);
                    match String::from_utf8(bytes) {
                        Ok(text) => attached.text = Some(text),
                        Err(_) => {
                            return Err(Refusal::file(
                                AttachmentError::NotUtf8(FileLabel::Attachment(
                                    attached.r#ref.clone(),
                                )),
                                &attached.name,
                            ))
                        }
                    }
                    self.cursor += 1;
                }
                Err(error) => {
                    self.warnings.push(Warning::Skipped {
                        file: FileLabel::Attachment(attached.r#ref.clone()),
                        name: attached.name.clone(),
                        error,
                    });
                    self.partial = Vec::new();
                    self.attachments.remove(self.cursor);
                }
            }
        }
        Ok(Loading::Done)
    }

    /// The target message's content for `flavour` (SPEC §4.5 "Content"), with the warnings it
    /// gave (binaries this backend has no part for). `None` when nothing was attached: send
    /// the messages as they are. Call after [`Checked::load`] returned `Done`; a text file not
    /// loaded by then is skipped. The files move into the content (and from it into the body).
    pub fn into_content(mut self, flavour: Flavour) -> Option<(Content, Vec<Warning>)> {
        let (_, text) = self.target.take()?;
        let mut warnings = std::mem::take(&mut self.warnings);
        if flavour == Flavour::Local {
            return Some((Content::text(text), warnings));
        }
        let files = Files::new(std::mem::take(&mut self.files));
        let attached = self
            .attachments
            .into_iter()
            .filter_map(|a| {
                let source = match a.class {
                    Class::Text => Source::Text(a.text?),
                    Class::Binary => Source::Binary {
                        filename: last_component(&a.name).to_string(),
                        data: Data::file(&files, a.file, a.size),
                        mime: a.mime,
                    },
                };
                Some((a.r#ref, source))
            })
            .collect();
        let images = self
            .images
            .into_iter()
            .map(|image| match image {
                Image::Inline { mime, base64 } => (mime, Data::Inline(base64)),
                Image::File { mime, file, size } => {
                    (mime.to_string(), Data::file(&files, file, size))
                }
            })
            .collect();
        let content = content::build(&text, attached, images, flavour, &mut warnings);
        Some((content, warnings))
    }
}
