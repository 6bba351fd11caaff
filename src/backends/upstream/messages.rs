//! The conversation as the `messages` of a request body, for both upstream backends: each
//! message is `{"<role key>":<role>,"content":<content>}`, and the target message's content is
//! the attachments' (SPEC §4.5) when the handoff attached something.

use super::FALLBACK_PROMPT;
use crate::attachments::BodyPlan;
use crate::backends::Attached;
use crate::handoff::{Content, HandoffData};

/// How a backend names a message's role.
pub struct Roles {
    /// The member that holds the role: `role` (OpenAI), `type` (LangGraph).
    pub key: &'static str,
    /// The handoff's role (OpenAI style) as this API names it.
    pub name: fn(&str) -> &str,
}

/// Writes the messages, without the brackets around them: the handoff's, or one user message
/// made from `prompt` (`Hello` when it is empty). A content-parts array goes upstream exactly
/// as the client wrote it.
pub fn push_messages(
    body: &mut BodyPlan,
    request: &HandoffData,
    attached: Option<&Attached>,
    roles: &Roles,
) {
    let replacement = |index: Option<usize>| {
        attached
            .filter(|attached| attached.target == index)
            .map(|attached| &attached.content)
    };
    if request.messages.is_empty() {
        let prompt = match request.prompt.as_str() {
            "" => FALLBACK_PROMPT,
            prompt => prompt,
        };
        let content = Content::from(prompt);
        push_message(body, roles, "user", &content, replacement(None));
        return;
    }
    for (i, message) in request.messages.iter().enumerate() {
        if i > 0 {
            body.push(b",");
        }
        let content = &message.content;
        push_message(body, roles, &message.role, content, replacement(Some(i)));
    }
}

fn push_message(
    body: &mut BodyPlan,
    roles: &Roles,
    role: &str,
    content: &Content,
    replacement: Option<&crate::attachments::Content>,
) {
    body.push(b"{\"");
    body.push(roles.key.as_bytes());
    body.push(b"\":");
    body.push_json_string((roles.name)(role));
    body.push(b",\"content\":");
    match (replacement, content) {
        (Some(attached), _) => body.push_content(attached),
        (None, Content::Text(text)) => body.push_json_string(text),
        (None, Content::Parts(parts)) => body.push(parts.json().as_bytes()),
    }
    body.push(b"}");
}
