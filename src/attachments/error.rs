//! Why attachments were refused, and what was worth a warning.
//!
//! An [`AttachmentError`]'s `Display` is what the client reads (SPEC §3.3): a file is named by
//! its ref (or its place in `image_paths`), never by a path. The names and OS errors for the log
//! travel beside it, in [`Refusal`] and [`Warning`].

use std::fmt;
use std::io;

use crate::end::Rejection;
use crate::http::ErrorStatus;

/// Refs are the client's own words; a very long one is cut in messages.
const LABEL_MAX: usize = 64;

/// Which of the handoff's file keys a file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLabel {
    /// `attachments[ref]`.
    Attachment(String),
    /// `image_paths[i]`.
    ImagePaths(usize),
    /// `image_path`.
    ImagePath,
}

impl fmt::Display for FileLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileLabel::Attachment(r) => {
                let cut = cut(r);
                let more = if cut.len() < r.len() { "…" } else { "" };
                write!(f, "attachment {:?}", format!("{cut}{more}"))
            }
            FileLabel::ImagePaths(i) => write!(f, "image_paths[{i}]"),
            FileLabel::ImagePath => write!(f, "image_path"),
        }
    }
}

fn cut(text: &str) -> &str {
    let mut end = text.len().min(LABEL_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Which inline image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLabel {
    /// `images[i]`.
    Images(usize),
    /// `image_base64`.
    ImageBase64,
}

impl fmt::Display for ImageLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageLabel::Images(i) => write!(f, "images[{i}]"),
            ImageLabel::ImageBase64 => write!(f, "image_base64"),
        }
    }
}

/// Why a handoff's attachments were refused, or why sending them failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentError {
    /// `data_dir: ""` and the handoff names files.
    FilesOff,
    /// `data_dir` could not be opened (yet).
    DirUnavailable,
    /// Attachments or images, and `messages` holds no `user` message.
    NoUserMessage,
    /// Attachments or images, and the target message's content is already a parts array.
    TargetIsParts,
    /// An `attachments` name that is not a plain relative name.
    BadName(FileLabel),
    /// An `image_path(s)` value that is not an absolute path under `data_dir`.
    BadImagePath(FileLabel),
    /// More files than the per-request limit.
    TooManyFiles { count: usize },
    /// A symbolic link somewhere in the name.
    Symlink(FileLabel),
    /// A FIFO, a directory, a device or a socket.
    NotRegular(FileLabel),
    /// The name resolved outside `data_dir`.
    Escape(FileLabel),
    /// No type: an unknown extension and no `attachment_types` entry.
    UnknownType(FileLabel),
    /// An `attachment_types` entry with nothing left after trimming.
    EmptyType(FileLabel),
    /// An `image_path(s)` file that is not a PNG, JPEG, GIF or WebP image.
    NotImage(FileLabel),
    /// A file over its class's limit.
    TooLarge { file: FileLabel, limit: u64 },
    /// Files plus inline images over `max_attachment_bytes`.
    OverTotal { limit: u64 },
    /// A text file that is not UTF-8.
    NotUtf8(FileLabel),
    /// Inline image data that is not standard, padded base64.
    BadBase64(ImageLabel),
    /// An inline image type other than the four allowed.
    BadImageType(ImageLabel),
    /// The file's size changed after it was checked.
    Changed(FileLabel),
    /// Reading a checked file failed while sending it.
    ReadFailed(FileLabel),
}

impl AttachmentError {
    /// The HTTP status the client gets (SPEC §3.3).
    pub fn status(&self) -> ErrorStatus {
        match self {
            AttachmentError::TooManyFiles { .. }
            | AttachmentError::TooLarge { .. }
            | AttachmentError::OverTotal { .. } => ErrorStatus::PayloadTooLarge,
            AttachmentError::DirUnavailable
            | AttachmentError::Changed(_)
            | AttachmentError::ReadFailed(_) => ErrorStatus::InternalServerError,
            AttachmentError::FilesOff
            | AttachmentError::NoUserMessage
            | AttachmentError::TargetIsParts
            | AttachmentError::BadName(_)
            | AttachmentError::BadImagePath(_)
            | AttachmentError::Symlink(_)
            | AttachmentError::NotRegular(_)
            | AttachmentError::Escape(_)
            | AttachmentError::UnknownType(_)
            | AttachmentError::EmptyType(_)
            | AttachmentError::NotImage(_)
            | AttachmentError::NotUtf8(_)
            | AttachmentError::BadBase64(_)
            | AttachmentError::BadImageType(_) => ErrorStatus::BadRequest,
        }
    }

    /// The rejection reason when this refuses a handoff before its stream (SPEC §7.2). A file
    /// that changes while the upstream request is being written ends a stream instead: outcome
    /// `other`.
    pub fn rejection(&self) -> Rejection {
        Rejection::BadAttachment
    }
}

impl fmt::Display for AttachmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachmentError::FilesOff => write!(f, "this server does not accept attachment files"),
            AttachmentError::DirUnavailable => write!(
                f,
                "attachment files cannot be read at the moment; try again later"
            ),
            AttachmentError::NoUserMessage => {
                write!(f, "attachments and images need a user message in messages")
            }
            AttachmentError::TargetIsParts => write!(
                f,
                "attachments and images cannot be added to a user message whose content is \
                 already a list of parts"
            ),
            AttachmentError::BadName(file) => write!(
                f,
                "{file} must be a file name relative to the data directory, without empty, \
                 '.' or '..' parts"
            ),
            AttachmentError::BadImagePath(file) => write!(
                f,
                "{file} must be an absolute path to a file inside the data directory"
            ),
            AttachmentError::TooManyFiles { count } => write!(
                f,
                "{count} attachment files are more than the {} one request may send",
                super::MAX_FILES
            ),
            AttachmentError::Symlink(file) => {
                write!(f, "{file} is a symbolic link, which is not accepted")
            }
            AttachmentError::NotRegular(file) => write!(f, "{file} is not a regular file"),
            AttachmentError::Escape(file) => {
                write!(f, "{file} is not inside the data directory")
            }
            AttachmentError::UnknownType(file) => write!(
                f,
                "{file} has no known file type: name it .png, .jpg, .jpeg, .gif, .webp, .pdf, \
                 .txt, .log, .md, .csv, .json, .xml, .html, .yaml or .yml, or give its type in \
                 attachment_types"
            ),
            AttachmentError::EmptyType(file) => {
                write!(f, "the attachment_types entry for {file} is empty")
            }
            AttachmentError::NotImage(file) => {
                write!(f, "{file} is not a PNG, JPEG, GIF or WebP image")
            }
            AttachmentError::TooLarge { file, limit } => {
                write!(f, "{file} is larger than {limit} bytes")
            }
            AttachmentError::OverTotal { limit } => write!(
                f,
                "the attachments and images add up to more than {limit} bytes"
            ),
            AttachmentError::NotUtf8(file) => write!(f, "{file} is not valid UTF-8 text"),
            AttachmentError::BadBase64(image) => {
                write!(f, "{image} is not standard, padded base64")
            }
            AttachmentError::BadImageType(image) => write!(
                f,
                "{image} must be of type image/png, image/jpeg, image/gif or image/webp"
            ),
            AttachmentError::Changed(file) => {
                write!(f, "{file} changed while it was being read")
            }
            AttachmentError::ReadFailed(file) => write!(f, "{file} could not be read"),
        }
    }
}

impl std::error::Error for AttachmentError {}

/// A refusal, with what the log may say beyond the client's message.
#[derive(Debug)]
pub struct Refusal {
    pub error: AttachmentError,
    /// The file's name under `data_dir`, for the log only.
    pub name: Option<String>,
    /// What the system said, for the log only.
    pub os_error: Option<io::Error>,
    /// What else went wrong before the refusal was final (files skipped or not deleted).
    pub warnings: Vec<Warning>,
}

impl Refusal {
    pub(crate) fn new(error: AttachmentError) -> Refusal {
        Refusal {
            error,
            name: None,
            os_error: None,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn file(error: AttachmentError, name: &str) -> Refusal {
        Refusal {
            error,
            name: Some(name.to_string()),
            os_error: None,
            warnings: Vec::new(),
        }
    }

    /// One line for the log: the client's message, then the name and the OS error.
    pub fn log_detail(&self) -> String {
        let mut line = self.error.to_string();
        if let Some(name) = &self.name {
            line.push_str(&format!(" (file {name:?})"));
        }
        if let Some(error) = &self.os_error {
            line.push_str(&format!(": {error}"));
        }
        line
    }
}

/// A kind of warning, for logging the first of each kind per connection (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// A file that could not be opened or read: skipped.
    Skipped,
    /// A binary file the backend has no part for: its placeholder stays, or it is dropped.
    Unsendable,
    /// A file that could not be deleted.
    NotDeleted,
}

/// Something about one file worth a log line; the request went on.
#[derive(Debug)]
pub enum Warning {
    /// Missing or unreadable: skipped, its placeholder stays literal.
    Skipped {
        file: FileLabel,
        name: String,
        error: io::Error,
    },
    /// A binary file of this type makes no part for this backend.
    Unsendable {
        file: FileLabel,
        mime: String,
        /// True when it was named by a placeholder (which stays literal), false when dropped.
        referenced: bool,
    },
    /// The file was opened but could not be deleted, or another file had taken its name.
    NotDeleted {
        file: FileLabel,
        name: String,
        error: io::Error,
    },
}

impl Warning {
    pub fn kind(&self) -> WarningKind {
        match self {
            Warning::Skipped { .. } => WarningKind::Skipped,
            Warning::Unsendable { .. } => WarningKind::Unsendable,
            Warning::NotDeleted { .. } => WarningKind::NotDeleted,
        }
    }
}

/// For the log (names may appear there, never in client messages).
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Skipped { file, name, error } => {
                write!(
                    f,
                    "{file} skipped: file {name:?} could not be opened: {error}"
                )
            }
            Warning::Unsendable {
                file,
                mime,
                referenced,
            } => {
                let what = if *referenced {
                    "its placeholder was left as it is"
                } else {
                    "it was dropped"
                };
                write!(
                    f,
                    "{file} of type {mime:?} cannot be sent to this backend: {what}"
                )
            }
            Warning::NotDeleted { file, name, error } => write!(
                f,
                "{file}: file {name:?} was read but could not be deleted: {error}; \
                 check that the daemon may write to the data directory"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let file = FileLabel::Attachment("a".into());
        assert_eq!(AttachmentError::BadName(file.clone()).status().code(), 400);
        assert_eq!(
            AttachmentError::TooLarge {
                file: file.clone(),
                limit: 1
            }
            .status()
            .code(),
            413
        );
        assert_eq!(AttachmentError::OverTotal { limit: 1 }.status().code(), 413);
        assert_eq!(
            AttachmentError::TooManyFiles { count: 33 }.status().code(),
            413
        );
        assert_eq!(AttachmentError::DirUnavailable.status().code(), 500);
        assert_eq!(AttachmentError::Changed(file).status().code(), 500);
        assert_eq!(
            AttachmentError::FilesOff.rejection(),
            Rejection::BadAttachment
        );
    }

    #[test]
    fn messages_name_the_ref_and_cut_long_ones() {
        assert_eq!(
            AttachmentError::NotUtf8(FileLabel::Attachment("notes".into())).to_string(),
            "attachment \"notes\" is not valid UTF-8 text"
        );
        assert_eq!(
            AttachmentError::NotImage(FileLabel::ImagePaths(2)).to_string(),
            "image_paths[2] is not a PNG, JPEG, GIF or WebP image"
        );
        let long = "é".repeat(100);
        let message = AttachmentError::Symlink(FileLabel::Attachment(long)).to_string();
        assert!(
            message.starts_with(&format!("attachment \"{}…\"", "é".repeat(32))),
            "{message}"
        );
        assert_eq!(
            AttachmentError::BadBase64(ImageLabel::Images(0)).to_string(),
            "images[0] is not standard, padded base64"
        );
    }

    #[test]
    fn the_log_detail_adds_the_name_and_the_os_error() {
        let mut refusal = Refusal::file(
            AttachmentError::Symlink(FileLabel::Attachment("a".into())),
            "link.txt",
        );
        refusal.os_error = Some(io::Error::from_raw_os_error(libc::ELOOP));
        let line = refusal.log_detail();
        assert!(
            line.starts_with(
                "attachment \"a\" is a symbolic link, which is not accepted (file \"link.txt\"): "
            ),
            "{line}"
        );
    }
}
