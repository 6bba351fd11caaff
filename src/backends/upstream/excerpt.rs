//! Upstream words made fit for a log line: bounded, valid UTF-8, and without API keys.

/// The most of an upstream body or event that goes into one log line.
pub const EXCERPT_LIMIT: usize = 4 * 1024;

/// Key prefixes that upstreams echo back in error messages (OpenAI's 401 quotes the key it was
/// given, partly masked; others do not mask at all).
const KEY_PREFIXES: [&str; 3] = ["sk-", "lsv2_", "Bearer "];
/// Fewer key characters than this after a prefix is a word, not a key.
const MIN_KEY: usize = 8;

/// `raw` cut to [`EXCERPT_LIMIT`] bytes on a character boundary (with `…` when cut), bytes that
/// are not UTF-8 replaced, and anything that looks like an API key replaced by `<redacted>`.
pub fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut end = text.len().min(EXCERPT_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = redact(&text[..end]);
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Replaces what follows a key prefix when it looks like a key: the prefix starts a word (so
/// `task-force` is left alone) and at least [`MIN_KEY`] key characters follow.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some((at, prefix)) = KEY_PREFIXES
        .iter()
        .filter_map(|p| text[from..].find(p).map(|at| (from + at, *p)))
        .min()
    {
        let after = at + prefix.len();
        let key_len = text[after..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_*".contains(c)))
            .unwrap_or(text.len() - after);
        let starts_word = !text[..at].ends_with(|c: char| c.is_alphanumeric());
        if starts_word && key_len >= MIN_KEY {
            out.push_str(&text[copied..after]);
            out.push_str("<redacted>");
            copied = after + key_len;
            from = copied;
        } else {
            from = after;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_passes_unchanged() {
        assert_eq!(
            excerpt(br#"{"error":{"message":"upstream exploded"}}"#),
            r#"{"error":{"message":"upstream exploded"}}"#
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let mut raw = vec![b'a'; EXCERPT_LIMIT - 1];
        raw.extend_from_slice("é and more".as_bytes());
        let cut = excerpt(&raw);
        assert_eq!(cut, format!("{}…", "a".repeat(EXCERPT_LIMIT - 1)));
        assert_eq!(excerpt(b"a\xFFb"), "a\u{FFFD}b");
    }

    #[test]
    fn keys_are_redacted() {
        let raw = b"Incorrect API key provided: sk-proj-abc***************xyz9. \
            See Bearer tok_12345678 and lsv2_pt_12345678_abcdef.";
        assert_eq!(
            excerpt(raw),
            "Incorrect API key provided: sk-<redacted>. \
            See Bearer <redacted> and lsv2_<redacted>."
        );
        for words in [
            "ask- nothing",
            "task-oriented-workloads",
            "sk-short",
            "Bearer x",
        ] {
            assert_eq!(excerpt(words.as_bytes()), words);
        }
    }
}
