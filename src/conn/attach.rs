//! The attaching stage (SPEC §4.5): between an accepted handoff and its backend's start.
//!
//! [`check`] opens (and deletes) every file the handoff names and decides whether it may go on;
//! for an upstream backend, [`Attaching`] then reads its text files a slice per loop turn and
//! shapes the target message's content. [`discard_unclaimed`] deletes the files nothing else
//! took care of: all of a refused handoff's, and the earlier ones of a key given twice.
//!
//! | step                | what happens                                   | then                                  |
//! |---------------------|------------------------------------------------|---------------------------------------|
//! | check               | a refusal                                      | the refusal's status (400, 413, 500)  |
//! | check, local backend| files checked and deleted, none read           | the backend starts; `attachments ignored` at info |
//! | check, upstream     | nothing attached                               | the backend starts                    |
//! | check, upstream     | something attached                             | Attaching                             |
//! | Attaching, Tick     | a slice read, more to come                     | Attaching (next slice next turn)      |
//! | Attaching, Tick     | every text read                                | the backend starts with the content   |
//! | Attaching, Tick     | a text not UTF-8, or it changed size           | its status (400, 500)                 |

use std::path::Path;
use std::time::Instant;

use crate::attachments::{
    self, find_target, AttachmentRequest, Checked, DataDirSlot, DirAccess, DirError, DirNote,
    Flavour, Limits, Loading, MessageView, Refusal, Warning, WarningKind, SLICE,
};
use crate::backends::Attached;
use crate::handoff::{HandoffData, StagedFiles};

use super::repeats::{Repeatable, Repeats};

/// An upstream backend's handoff while its text files are read.
pub struct Attaching {
    request: HandoffData,
    checked: Checked,
    flavour: Flavour,
    /// When the last slice was read: the next one is due at once, on the next turn.
    since: Instant,
}

/// What [`Attaching::load`] came to.
pub enum Loaded {
    /// More to read next turn.
    More(Box<Attaching>),
    /// Everything read: start the backend with the request and what it attached.
    Ready(Box<(HandoffData, Option<Attached>)>),
}

impl Attaching {
    pub fn new(request: HandoffData, checked: Checked, flavour: Flavour, now: Instant) -> Self {
        Attaching {
            request,
            checked,
            flavour,
            since: now,
        }
    }

    /// Due on the next turn: a slice is read per turn until all are.
    pub fn deadline(&self) -> Instant {
        self.since
    }

    /// The texts read so far, inline images, and the handoff's own text.
    pub fn held_bytes(&self) -> usize {
        self.checked.held_bytes() + self.request.prompt.capacity()
    }

    /// Reads the next slice of the text files (at most what is `left` of this turn's file
    /// bytes, which it takes); once all are read, shapes the content.
    pub fn load(
        mut self: Box<Self>,
        left: &mut usize,
        now: Instant,
        repeats: &mut Repeats,
        conn: u64,
    ) -> Result<Loaded, Refusal> {
        let budget = SLICE.min(*left);
        let loading = if budget == 0 {
            Ok(Loading::More)
        } else {
            // Charged in full: it reads at most that much.
            *left -= budget;
            self.checked.load(budget)
        };
        log_warnings(self.checked.take_warnings(), repeats, conn);
        match loading? {
            Loading::More => {
                self.since = now;
                Ok(Loaded::More(self))
            }
            Loading::Done => {
                let Attaching {
                    request,
                    checked,
                    flavour,
                    ..
                } = *self;
                let target = checked.target_index();
                let attached = checked.into_content(flavour).map(|(content, warnings)| {
                    log_warnings(warnings, repeats, conn);
                    Attached { target, content }
                });
                Ok(Loaded::Ready(Box::new((request, attached))))
            }
        }
    }
}

/// Checks what `wanted` attaches to `request`, opening and deleting every file it names.
pub fn check(
    request: &HandoffData,
    wanted: &AttachmentRequest,
    dir: &mut DataDirSlot,
    limits: Limits,
    now: Instant,
) -> Result<Checked, Refusal> {
    if wanted.names_files() {
        retry_dir(dir, now);
    }
    let messages = MessageView::all(request);
    let target = find_target(&messages, &request.prompt);
    attachments::check(wanted, target, dir.access(), limits)
}

/// Deletes the files `staged` names that `claimed` (what [`check`] was given) does not: all of
/// them when the handoff was refused before its attachments were checked.
pub fn discard_unclaimed(
    staged: &StagedFiles,
    claimed: Option<&AttachmentRequest>,
    dir: &mut DataDirSlot,
    now: Instant,
    repeats: &mut Repeats,
    conn: u64,
) {
    let leftovers = AttachmentRequest::leftovers(staged, claimed);
    if !leftovers.names_files() {
        return;
    }
    retry_dir(dir, now);
    if let DirAccess::Unavailable = dir.access() {
        log::warn!(
            conn = conn;
            "attachment files not deleted: the data directory is not open (data_max_age_ms \
             sweeps them)"
        );
    }
    log_warnings(
        attachments::discard(&leftovers, dir.access()),
        repeats,
        conn,
    );
}

/// Logs a refusal's detail and what went wrong on the way to it.
pub fn log_refusal(refusal: &mut Refusal, repeats: &mut Repeats, conn: u64) {
    log_warnings(std::mem::take(&mut refusal.warnings), repeats, conn);
    let detail = refusal.log_detail();
    log::warn!(conn = conn, error = detail.as_str(); "attachments refused");
}

/// The first warning of each kind at warn; the rest are counted in `suppressed=`.
pub fn log_warnings(warnings: Vec<Warning>, repeats: &mut Repeats, conn: u64) {
    for warning in warnings {
        let kind = match warning.kind() {
            WarningKind::Skipped => Repeatable::AttachmentSkipped,
            WarningKind::Unsendable => Repeatable::AttachmentUnsendable,
            WarningKind::NotDeleted => Repeatable::AttachmentNotDeleted,
        };
        if repeats.first(kind) {
            let detail = warning.to_string();
            log::warn!(conn = conn, detail = detail.as_str(); "attachment problem");
        }
    }
}

/// Tries the data directory again when it could not be opened and its retry is due.
fn retry_dir(dir: &mut DataDirSlot, now: Instant) {
    if let Some(result) = dir.retry(now) {
        report_dir(None, &result);
    }
}

/// Logs how opening the data directory went: its notes, or why it cannot be used.
pub fn report_dir(path: Option<&Path>, result: &Result<Vec<DirNote>, DirError>) {
    let path = path.map(|p| p.display().to_string());
    match result {
        Ok(notes) => {
            for note in notes {
                let text = note.to_string();
                if note.is_warning() {
                    log::warn!(data_dir = path.as_deref(), note = text.as_str(); "data directory");
                } else {
                    log::info!(data_dir = path.as_deref(), note = text.as_str(); "data directory");
                }
            }
        }
        Err(error) => log::error!(
            data_dir = path.as_deref(),
            error:% = error;
            "data directory cannot be opened: requests that name attachment files get 500 \
             until it can (retried every 10 s)"
        ),
    }
}
