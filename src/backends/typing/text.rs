//! The typing backend's own words: the fixed answer, the lead-in to a quote, and the sayings
//! used when no quote can be had.

/// The one prompt with a fixed answer.
pub const FIXED_PROMPT: &str = "Tell me about streaming";

/// The answer to [`FIXED_PROMPT`]: how this daemon comes to be typing it.
pub const FIXED_ANSWER: &str = "\
When you sent that question, Apache did the talking first. It read your request, let PHP \
check who you are, and then stepped aside: mod_socket_handoff passed your connection's \
socket to this daemon over a Unix socket, as an SCM_RIGHTS message, with a little JSON \
about what you asked.

From then on Apache is out of the picture. Its worker went back to serving other people the \
moment the socket left it, so a slow answer costs Apache nothing.

This daemon holds your socket in one event loop, next to thousands of others. Each stream \
is a small state machine with a timer; no thread waits for you. When the next character is \
due, the loop wakes up, writes it as a Server-Sent Event, and goes back to sleep.

If you stop reading, the daemon stops writing and keeps only a small buffer for you. When \
the answer is complete, it sends a DONE marker and closes the connection.";

/// Put before a quote when the prompt is anything else.
pub const QUOTE_INTRO: &str = "I don't know anything about that, but ";

/// Quotes of our own for when `fortune` is missing, failing, slow or rate limited. Written
/// capitalised like a fortune would be; the lowercase rule applies to them too.
pub const SAYINGS: [&str; 5] = [
    "A stream that is never read is only a very patient buffer.",
    "Every long answer is a short answer, typed slowly.",
    "The socket you hand over is the one you no longer have to hold.",
    "Patience is a timer that nobody has cancelled yet.",
    "Good news travels one character at a time.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_answer_has_paragraphs_and_explains_the_handoff() {
        assert_eq!(FIXED_ANSWER.matches("\n\n").count(), 3);
        for part in [
            "Apache",
            "mod_socket_handoff",
            "SCM_RIGHTS",
            "event loop",
            "DONE",
        ] {
            assert!(FIXED_ANSWER.contains(part), "{part}");
        }
        assert!(
            !FIXED_ANSWER.contains("  "),
            "no double spaces from line joins"
        );
        assert!(FIXED_ANSWER.ends_with('.'));
    }

    #[test]
    fn sayings_are_single_sentences_without_line_breaks() {
        for saying in SAYINGS {
            assert!(!saying.contains('\n'));
            assert!(saying.ends_with('.'));
            assert!(saying.starts_with(char::is_uppercase));
        }
    }
}
