//! What a handoff asks to attach, as the handoff parser hands it over, and the message the
//! attachments go into (SPEC §4.5 "Target message").

use crate::handoff::{Content, HandoffData, StagedFiles};

/// The attachment keys of one handoff, exactly as given (SPEC §1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentRequest {
    /// `attachments`: (ref, file name) in the order the handoff gave them, a ref given twice
    /// included twice. The last one given for a ref is used; every file named is deleted.
    pub attachments: Vec<(String, String)>,
    /// `attachment_types`: (ref, type); the last one given for a ref is used. An entry for a ref
    /// not in `attachments` is ignored.
    pub attachment_types: Vec<(String, String)>,
    /// `images`, in order.
    pub images: Vec<InlineImage>,
    /// `image_base64`; empty means absent.
    pub image_base64: Option<String>,
    /// `image_mime_type`: the type of `image_base64`, ignored without it.
    pub image_mime_type: Option<String>,
    /// `image_path` (deprecated): an absolute path under `data_dir`; empty means absent.
    pub image_path: Option<String>,
    /// `image_paths`: absolute paths under `data_dir`, in order.
    pub image_paths: Vec<String>,
}

/// One entry of `images`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineImage {
    pub base64: String,
    /// `None` or empty: `image/jpeg`.
    pub mime_type: Option<String>,
}

impl AttachmentRequest {
    /// The attachment keys of parsed handoff data (a ref given twice is there once, the last:
    /// see [`AttachmentRequest::leftovers`] for the files of the earlier ones).
    pub fn from_handoff(data: &HandoffData) -> AttachmentRequest {
        AttachmentRequest {
            attachments: data
                .attachments
                .iter()
                .map(|(reference, name)| (reference.clone(), name.clone()))
                .collect(),
            attachment_types: data
                .attachment_types
                .iter()
                .map(|(reference, kind)| (reference.clone(), kind.clone()))
                .collect(),
            images: data
                .images
                .iter()
                .map(|image| InlineImage {
                    base64: image.base64.clone(),
                    mime_type: image.mime_type.clone(),
                })
                .collect(),
            image_base64: data.image_base64.clone(),
            image_mime_type: data.image_mime_type.clone(),
            image_path: data.image_path.clone(),
            image_paths: data.image_paths.clone(),
        }
    }

    /// The files a handoff named that `effective` does not use: names of keys given twice, or
    /// all of them when the data was refused. Only to be deleted ([`super::discard`]).
    pub fn leftovers(staged: &StagedFiles, effective: Option<&AttachmentRequest>) -> Self {
        let mut used: Vec<&str> = Vec::new();
        if let Some(effective) = effective {
            used.extend(effective.attachments.iter().map(|(_, name)| name.as_str()));
            used.extend(effective.image_paths.iter().map(String::as_str));
            used.extend(effective.image_path());
        }
        let mut take = |name: &String| match used.iter().position(|u| *u == name) {
            Some(at) => {
                used.swap_remove(at);
                false
            }
            None => true,
        };
        let attachments = staged
            .attachments
            .iter()
            .filter(|name| take(name))
            .enumerate()
            .map(|(i, name)| (format!("leftover-{i}"), name.clone()))
            .collect();
        let image_paths = staged
            .image_paths
            .iter()
            .filter(|name| take(name))
            .cloned()
            .collect();
        AttachmentRequest {
            attachments,
            image_paths,
            ..AttachmentRequest::default()
        }
    }

    /// True when the handoff names at least one file (`data_dir` is needed).
    pub fn names_files(&self) -> bool {
        !self.attachments.is_empty() || !self.image_paths.is_empty() || self.image_path().is_some()
    }

    /// True when the handoff attaches anything at all, files or inline images: the target
    /// message must then exist and have text content.
    pub fn attaches_anything(&self) -> bool {
        self.names_files() || !self.images.is_empty() || self.image_base64().is_some()
    }

    /// `image_path` when it is given and not empty (PHP sends `""` for none).
    pub(crate) fn image_path(&self) -> Option<&str> {
        self.image_path.as_deref().filter(|p| !p.is_empty())
    }

    /// `image_base64` when it is given and not empty.
    pub(crate) fn image_base64(&self) -> Option<&str> {
        self.image_base64.as_deref().filter(|b| !b.is_empty())
    }
}

/// A message as far as choosing the target is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageView<'a> {
    pub role: &'a str,
    /// The content when it is a string; `None` when it is a content-parts array.
    pub text: Option<&'a str>,
}

impl MessageView<'_> {
    /// The handoff's messages as the target is chosen from them.
    pub fn all(request: &HandoffData) -> Vec<MessageView<'_>> {
        request
            .messages
            .iter()
            .map(|message| MessageView {
                role: &message.role,
                text: match &message.content {
                    Content::Text(text) => Some(text),
                    Content::Parts(_) => None,
                },
            })
            .collect()
    }
}

/// The message whose content attachments shape (SPEC §4.5 "Target message").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `messages[index]`, the last message whose role is `user`, with this text.
    Message { index: usize, text: String },
    /// No `messages`: the user message made from `prompt` (`Hello` when it is empty).
    Prompt { text: String },
    /// `messages` has no `user` message.
    NoUserMessage,
    /// The last `user` message's content is a parts array, which placeholders cannot be
    /// resolved in.
    PartsArray { index: usize },
}

/// What is asked when a handoff has neither messages nor a prompt (SPEC §1.3).
const FALLBACK_PROMPT: &str = "Hello";

/// Chooses the target: the last `user` message when there are messages, else the prompt.
pub fn find_target(messages: &[MessageView<'_>], prompt: &str) -> Target {
    if messages.is_empty() {
        let text = if prompt.is_empty() {
            FALLBACK_PROMPT
        } else {
            prompt
        };
        return Target::Prompt {
            text: text.to_string(),
        };
    }
    match messages.iter().rposition(|m| m.role == "user") {
        None => Target::NoUserMessage,
        Some(index) => match messages[index].text {
            Some(text) => Target::Message {
                index,
                text: text.to_string(),
            },
            None => Target::PartsArray { index },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(role: &'a str, text: &'a str) -> MessageView<'a> {
        MessageView {
            role,
            text: Some(text),
        }
    }

    #[test]
    fn the_last_user_message_is_the_target() {
        let messages = [
            view("system", "S"),
            view("user", "U1"),
            view("user", "U2"),
            view("assistant", "A"),
        ];
        assert_eq!(
            find_target(&messages, "ignored"),
            Target::Message {
                index: 2,
                text: "U2".into()
            }
        );
        let empty = [view("user", "")];
        assert_eq!(
            find_target(&empty, "p"),
            Target::Message {
                index: 0,
                text: String::new()
            }
        );
    }

    #[test]
    fn without_messages_the_prompt_or_hello() {
        assert_eq!(find_target(&[], "hi"), Target::Prompt { text: "hi".into() });
        assert_eq!(
            find_target(&[], ""),
            Target::Prompt {
                text: "Hello".into()
            }
        );
    }

    #[test]
    fn no_user_message_or_a_parts_array() {
        assert_eq!(
            find_target(&[view("assistant", "{p}")], "x"),
            Target::NoUserMessage
        );
        assert_eq!(
            find_target(&[view("User", "x")], "x"),
            Target::NoUserMessage
        );
        let parts = [
            view("user", "a"),
            MessageView {
                role: "user",
                text: None,
            },
        ];
        assert_eq!(find_target(&parts, "x"), Target::PartsArray { index: 1 });
    }

    #[test]
    fn what_the_request_attaches() {
        let mut request = AttachmentRequest::default();
        assert!(!request.attaches_anything());
        request.image_base64 = Some(String::new());
        request.image_mime_type = Some("image/png".into());
        assert!(!request.attaches_anything());
        request.image_base64 = Some("QQ==".into());
        assert!(request.attaches_anything());
        assert!(!request.names_files());
        request.image_path = Some(String::new());
        assert!(!request.names_files());
        request.image_paths.push("/d/a.png".into());
        assert!(request.names_files());
    }
}
