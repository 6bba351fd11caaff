//! Masking configured secrets (API keys) in log lines, whatever their shape: an upstream may
//! echo a key without any recognisable prefix inside an error body we log.
//!
//! The message and every value are masked before they are quoted or escaped, not the finished
//! line: a secret is found however the format would escape it, and a mask can never cut into
//! the line's own structure (`time=`, a level name, a key, a closing quote) when a secret
//! happens to equal a piece of it.
//!
//! The rule for short secrets: one of at least `MIN_ANYWHERE` bytes is masked wherever it
//! occurs; a shorter one only where a whole message or value equals it. Masking a one- or
//! two-letter key inside every word would make the log unreadable, and such a key gives no
//! protection anyway; not masking it at all would still print it where it is logged alone.
//! `set_secrets` warns when it is given a short one.

use std::borrow::Cow;

use memchr::memmem::Finder;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Secrets at least this long are masked wherever they occur.
pub const MIN_ANYWHERE: usize = 4;

pub struct Secrets {
    /// Secrets masked anywhere, longest first, so that one containing another is masked whole.
    anywhere: Vec<Finder<'static>>,
    /// Short secrets, masked only where they are the whole text.
    whole: Vec<Box<[u8]>>,
}

impl Secrets {
    /// No secrets: nothing is masked.
    pub const fn none() -> Secrets {
        Secrets {
            anywhere: Vec::new(),
            whole: Vec::new(),
        }
    }

    /// Empty secrets are ignored; duplicates are kept once.
    pub fn new(secrets: Vec<String>) -> Secrets {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let (anywhere, whole): (Vec<_>, Vec<_>) =
            secrets.into_iter().partition(|s| s.len() >= MIN_ANYWHERE);
        Secrets {
            anywhere: anywhere
                .iter()
                .map(|s| Finder::new(s).into_owned())
                .collect(),
            whole: whole.into_iter().map(Vec::into_boxed_slice).collect(),
        }
    }

    /// How many secrets are masked only where they are a whole value.
    pub fn short_count(&self) -> usize {
        self.whole.len()
    }

    /// `text` with every secret replaced by `MASK`. Borrowed exactly when nothing was masked
    /// (most lines), so that a caller can tell a masked number, which is no number any more.
    pub fn mask<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        if self.whole.iter().any(|secret| **secret == *text) {
            return Cow::Owned(MASK.as_bytes().to_vec());
        }
        let mut current = Cow::Borrowed(text);
        for finder in &self.anywhere {
            let mut matches = finder.find_iter(&current).peekable();
            if matches.peek().is_none() {
                continue;
            }
            let mut masked = Vec::with_capacity(current.len());
            let mut copied_to = 0;
            for start in matches {
                masked.extend_from_slice(&current[copied_to..start]);
                masked.extend_from_slice(MASK.as_bytes());
                copied_to = start + finder.needle().len();
            }
            masked.extend_from_slice(&current[copied_to..]);
            current = Cow::Owned(masked);
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Secrets {
        Secrets::new(list.iter().map(|s| s.to_string()).collect())
    }

    fn masked(secrets: &Secrets, text: &str) -> String {
        String::from_utf8(secrets.mask(text.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn masks_every_occurrence_of_every_secret() {
        let s = secrets(&["k3y-without-prefix", "other-secret"]);
        assert_eq!(
            masked(
                &s,
                "upstream said: bad key k3y-without-prefix (k3y-without-prefix)"
            ),
            "upstream said: bad key [REDACTED] ([REDACTED])"
        );
        assert_eq!(
            masked(&s, "other-secretk3y-without-prefix"),
            "[REDACTED][REDACTED]"
        );
        assert_eq!(masked(&s, "k3y-without-prefi"), "k3y-without-prefi");
    }

    #[test]
    fn nothing_to_mask_borrows() {
        let s = secrets(&["abcdef"]);
        assert!(matches!(s.mask(b"plain line"), Cow::Borrowed(_)));
        assert!(matches!(Secrets::none().mask(b"abcdef"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let s = secrets(&["abcd", "xxabcdxx"]);
        assert_eq!(masked(&s, "1 xxabcdxx 2 abcd"), "1 [REDACTED] 2 [REDACTED]");
    }

    #[test]
    fn short_secrets_are_masked_only_as_whole_values() {
        let s = secrets(&["abc", "", "abc"]);
        assert_eq!(s.short_count(), 1);
        assert_eq!(masked(&s, "abc"), "[REDACTED]");
        assert_eq!(masked(&s, "abcd"), "abcd");
        assert_eq!(masked(&s, ""), "");
        let s = secrets(&["abcd"]);
        assert_eq!(s.short_count(), 0);
        assert_eq!(masked(&s, "xabcdx"), "x[REDACTED]x");
    }

    #[test]
    fn non_ascii_secrets() {
        let s = secrets(&["cl\u{e9}-\u{1f511}"]);
        assert_eq!(masked(&s, "k=cl\u{e9}-\u{1f511}!"), "k=[REDACTED]!");
    }
}
