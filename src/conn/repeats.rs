//! Warnings that can repeat within one connection, once per upstream event say: the first of
//! each kind is logged, the rest are counted and the connection's end line says how many
//! (`suppressed=`). An upstream that sends ten thousand malformed events costs one line.

/// A kind of warning that may come up many times in one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeatable {
    /// An upstream event that could not be understood and was skipped.
    SkippedEvent,
    /// An attachment file that could not be opened or read: skipped.
    AttachmentSkipped,
    /// An attached binary the backend has no content part for.
    AttachmentUnsendable,
    /// An attachment file that could not be deleted.
    AttachmentNotDeleted,
}

#[derive(Debug, Default)]
pub struct Repeats {
    /// One bit per kind already logged.
    logged: u8,
    suppressed: u32,
}

impl Repeats {
    /// True the first time `kind` comes up in this connection (log it then); later ones are
    /// only counted.
    pub fn first(&mut self, kind: Repeatable) -> bool {
        let bit = 1 << (kind as u8);
        if self.logged & bit == 0 {
            self.logged |= bit;
            true
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            false
        }
    }

    pub fn suppressed(&self) -> u32 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_said_and_the_rest_counted() {
        let mut repeats = Repeats::default();
        assert!(repeats.first(Repeatable::SkippedEvent));
        assert!(!repeats.first(Repeatable::SkippedEvent));
        assert!(!repeats.first(Repeatable::SkippedEvent));
        assert_eq!(repeats.suppressed(), 2);
    }
}
