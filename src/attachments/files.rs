//! The open attachment files of one handoff, shared by its content and its upstream body.
//!
//! The files are already unlinked: these fds are all that keeps their bytes. They are closed
//! when the last holder (the checked set, the content, a body that may be resent) is dropped.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::error::FileLabel;

/// One checked, open file.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub fd: OwnedFd,
    /// For error messages.
    pub label: FileLabel,
}

/// The open files, shared without copying; an index names one.
#[derive(Debug, Clone)]
pub struct Files(Arc<[OpenFile]>);

impl Files {
    pub(crate) fn new(files: Vec<OpenFile>) -> Files {
        Files(files.into())
    }

    /// The file at `index`; indexes come from the same checked set, so one is always there.
    pub(crate) fn get(&self, index: usize) -> &OpenFile {
        &self.0[index]
    }
}
