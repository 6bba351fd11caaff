//! The target message's content (SPEC §4.5 "Content (Go's rules)"): a string, or a list of
//! parts, with `{ref}` placeholders resolved. Pure: file content is referred to, not held.

use super::error::{FileLabel, Warning};
use super::files::Files;
use super::types;
use crate::config::ContentFormat;

/// The shape the backend wants content in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// OpenAI chat completions: PDFs become `file` parts.
    OpenAi,
    /// LangGraph, with the profile's `content_format`.
    LangGraph(ContentFormat),
    /// mock and typing: files are checked and deleted, nothing is read or sent.
    Local,
}

/// Bytes a part carries, base64-encoded.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    /// An inline image's base64, already checked: safe inside a JSON string as it is.
    Inline(String),
    /// `len` bytes of an open file, encoded as the body is written.
    File {
        files: Files,
        index: usize,
        len: u64,
    },
}

impl Data {
    pub(crate) fn file(files: &Files, index: usize, len: u64) -> Data {
        Data::File {
            files: files.clone(),
            index,
            len,
        }
    }
}

/// One content part.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    /// `{"type":"text","text":…}`
    Text(String),
    /// `{"type":"image_url","image_url":{"url":"data:<mime>;base64,…"}}`
    Image { mime: String, data: Data },
    /// OpenAI's PDF part: `{"type":"file","file":{"filename":…,"file_data":"data:application/pdf;base64,…"}}`
    File { filename: String, data: Data },
    /// Anthropic's: `{"type":"document","source":{"type":"base64","media_type":…,"data":…}}`
    Document { mime: String, data: Data },
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    Parts(Vec<Part>),
}

/// The target message's content, ready to be written into a request body with
/// [`super::BodyPlan::push_content`].
#[derive(Debug, Clone)]
pub struct Content {
    pub(crate) value: Value,
    sent: usize,
}

impl Content {
    pub(crate) fn text(text: String) -> Content {
        Content {
            value: Value::Text(text),
            sent: 0,
        }
    }

    /// Files and inline images whose content is sent: the log's `attachments=`.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Bytes held: texts and inline image data (file content is not held).
    pub fn held_bytes(&self) -> usize {
        let data = |data: &Data| match data {
            Data::Inline(base64) => base64.capacity(),
            Data::File { .. } => 0,
        };
        match &self.value {
            Value::Text(text) => text.capacity(),
            Value::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => text.capacity(),
                    Part::Image { mime, data: d } | Part::Document { mime, data: d } => {
                        mime.capacity() + data(d)
                    }
                    Part::File { filename, data: d } => filename.capacity() + data(d),
                })
                .sum(),
        }
    }

    /// The content when it is a plain string.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::Text(text) => Some(text),
            Value::Parts(_) => None,
        }
    }
}

/// An attachment that opened and passed, by ref.
#[derive(Debug)]
pub(crate) enum Source {
    Text(String),
    Binary {
        mime: String,
        /// The last component of its name.
        filename: String,
        data: Data,
    },
}

/// The part a binary attachment makes for this flavour, if any.
fn binary_part(mime: &str, filename: &str, data: &Data, flavour: Flavour) -> Option<Part> {
    let anthropic = flavour == Flavour::LangGraph(ContentFormat::Anthropic);
    if types::is_image(mime) {
        Some(Part::Image {
            mime: mime.to_string(),
            data: data.clone(),
        })
    } else if types::is_pdf(mime) && flavour == Flavour::OpenAi {
        Some(Part::File {
            filename: filename.to_string(),
            data: data.clone(),
        })
    } else if anthropic {
        Some(Part::Document {
            mime: mime.to_string(),
            data: data.clone(),
        })
    } else {
        None
    }
}

/// Parts in text order, merging adjacent text.
#[derive(Default)]
struct Runs {
    parts: Vec<Part>,
    text: String,
}

impl Runs {
    fn part(&mut self, part: Part) {
        self.flush();
        self.parts.push(part);
    }

    /// An empty text run makes no part.
    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.parts.push(Part::Text(std::mem::take(&mut self.text)));
        }
    }
}

/// Builds the content from the target's text `t`, the attachments `attached` (in bytewise ref
/// order) and the images (inline ones, then files), following Go's rules.
pub(crate) fn build(
    t: &str,
    attached: Vec<(String, Source)>,
    images: Vec<(String, Data)>,
    flavour: Flavour,
    warnings: &mut Vec<Warning>,
) -> Content {
    let sent_images = images.len();
    let image_parts = images
        .into_iter()
        .map(|(mime, data)| Part::Image { mime, data });
    if attached.is_empty() {
        if sent_images == 0 {
            return Content::text(t.to_string());
        }
        // The text part is always there, even empty.
        let mut parts: Vec<Part> = image_parts.collect();
        parts.push(Part::Text(t.to_string()));
        return Content {
            value: Value::Parts(parts),
            sent: sent_images,
        };
    }

    let made: Vec<Option<Part>> = attached
        .iter()
        .map(|(_, source)| match source {
            Source::Text(_) => None,
            Source::Binary {
                mime,
                filename,
                data,
            } => binary_part(mime, filename, data, flavour),
        })
        .collect();
    let mut referenced = vec![false; attached.len()];
    let mut runs = Runs::default();
    let mut rest = t;
    // Find `{`, then the first `}` after it; a ref between them is a placeholder.
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|i| open + i) else {
            break;
        };
        let key = &rest[open + 1..close];
        match attached.binary_search_by(|(r, _)| r.as_bytes().cmp(key.as_bytes())) {
            Ok(i) => {
                runs.text.push_str(&rest[..open]);
                referenced[i] = true;
                match (&attached[i].1, &made[i]) {
                    (Source::Text(text), _) => runs.text.push_str(text),
                    (Source::Binary { .. }, Some(part)) => runs.part(part.clone()),
                    (Source::Binary { .. }, None) => runs.text.push_str(&rest[open..=close]),
                }
            }
            Err(_) => runs.text.push_str(&rest[..=close]),
        }
        rest = &rest[close + 1..];
    }
    runs.text.push_str(rest);

    let mut leading = Vec::new();
    let mut sent = sent_images;
    for (i, (r, source)) in attached.iter().enumerate() {
        match (source, &made[i]) {
            (Source::Text(text), _) => {
                sent += 1;
                if !referenced[i] {
                    runs.text.push_str(text);
                }
            }
            (Source::Binary { .. }, Some(part)) => {
                sent += 1;
                if !referenced[i] {
                    leading.push(part.clone());
                }
            }
            (Source::Binary { mime, .. }, None) => warnings.push(Warning::Unsendable {
                file: FileLabel::Attachment(r.clone()),
                mime: mime.clone(),
                referenced: referenced[i],
            }),
        }
    }

    if runs.parts.is_empty() && leading.is_empty() && sent_images == 0 {
        return Content {
            value: Value::Text(runs.text),
            sent,
        };
    }
    runs.flush();
    let mut parts = leading;
    parts.extend(image_parts);
    parts.append(&mut runs.parts);
    Content {
        value: Value::Parts(parts),
        sent,
    }
}
