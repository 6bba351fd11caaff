//! Attachments (SPEC §4.5): files PHP stages in `server.data_dir` and inline images, checked,
//! deleted, and sent upstream inside the target message's content.
//!
//! Sans-I/O where it can be: names, types, content shapes and base64 are plain code; the only
//! system calls are opening, deleting and reading files beneath the directory fd (`open.rs`,
//! `sys::at`), all bounded and non-blocking on a local directory.
//!
//! ## How a connection uses it
//! 1. At start-up (and on a reload that changes `data_dir`): [`DataDirSlot::open`]; log its
//!    notes or error. Before a request that names files, [`DataDirSlot::retry`] (due at most
//!    every 10 s while the directory cannot be opened).
//! 2. After the handoff data, `backend` and `profile` were accepted: [`find_target`] over the
//!    messages and prompt, then [`check`] with [`DataDirSlot::access`]. A [`Refusal`] is the
//!    answer (`error.status()`, reason `bad_attachment`); every file is already deleted.
//!    A handoff refused before this point, or answered 503: [`discard`].
//! 3. Local backends (mock, typing): log `count()` attachments ignored at info; drop the
//!    [`Checked`]. Upstream backends: call [`Checked::load`] once per loop turn with a budget of
//!    [`SLICE`] until `Done` (a `Refusal` is the answer), then [`Checked::into_content`].
//! 4. The backend writes its JSON body into a [`BodyPlan`], the target message's content with
//!    [`BodyPlan::push_content`]; [`BodyPlan::finish`] gives a [`Body`] whose `len()` is the
//!    `Content-Length`. The connection writes the head, then fills its upstream buffer from
//!    [`Body::fill_vec`], at most one slice per loop turn, and counts [`Body::held_bytes`]
//!    against the memory budget. An error from it ends the request: 500, outcome `other`.
//!    The body (which owns the open files) lives as long as the request may be resent.
//! 5. Warnings ([`Checked::take_warnings`], those `into_content` returns): the first of each
//!    [`WarningKind`] per connection at warn, the rest counted in `suppressed=`.
//!    `attachments=` in the end line is [`Content::sent`].

mod base64;
mod body;
mod check;
mod content;
mod dir;
mod error;
mod files;
mod names;
mod open;
mod request;
mod sweep;
mod types;

#[cfg(test)]
mod body_tests;
#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod content_tests;
#[cfg(test)]
pub(crate) mod testing;

pub use body::{Body, BodyPlan, SLICE};
pub use check::{check, discard, Checked, Limits, Loading};
pub use content::{Content, Flavour};
pub use dir::{DataDir, DataDirSlot, DirAccess, DirError, DirNote, Method, RETRY_INTERVAL};
pub use error::{AttachmentError, FileLabel, ImageLabel, Refusal, Warning, WarningKind};
pub use files::Files;
pub use request::{find_target, AttachmentRequest, InlineImage, MessageView, Target};
pub use sweep::{sweep, SweepReport, Sweeper, SWEEP_INTERVAL};
pub use types::{BINARY_MAX, TEXT_MAX};

/// Most files (`attachments` plus `image_paths` and `image_path`) one request may name.
pub const MAX_FILES: usize = 32;
