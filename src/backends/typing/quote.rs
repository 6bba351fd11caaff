//! From `fortune`'s output to the quote the typing backend types.
//!
//! - The attribution goes: the text is cut at the first line starting (after indentation) with
//!   `--`.
//! - Whitespace is collapsed: every run of spaces, tabs and line breaks becomes one space, and
//!   none is left at either end. Nothing left means no quote.
//! - The quote follows `I don't know anything about that, but `, so its first letter is
//!   lowercased, unless its first word is one that is capitalised anywhere in a sentence:
//!   - `I` (also in `I'm`, `I'd`, …),
//!   - a weekday or a month (`May` included: a month is a month),
//!   - an acronym: two or more letters, all capitals (`NASA`, `U.S.`, `OK`),
//!   - a proper name, detected two ways, because a full list of names is not possible: a small
//!     list of names and titles that fortune's literature quotes open with (`God`, `Shakespeare`,
//!     `Mr.`, `Dr.`, …), or a capitalised word followed by another capitalised word (`Mark
//!     Twain said…`, `Sherlock Holmes…`) unless the first word is a common sentence opener (`The
//!     Lord of the Rings…` still becomes `the Lord of the Rings…`).
//!
//! A word's core is the word without the punctuation around it (quotes, commas, a final dot)
//! and without a possessive or contraction (`NASA's` → `NASA`, `I'm` → `I`).

/// The quote in `output`, or `None` when there is none.
pub fn quote_from(output: &str) -> Option<String> {
    let body: Vec<&str> = output
        .lines()
        .take_while(|line| !line.trim_start().starts_with("--"))
        .collect();
    let quote = body
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!quote.is_empty()).then_some(quote)
}

/// `quote` with its first letter lowercased, unless its first word keeps its capital.
pub fn lowercase_first(quote: &str) -> String {
    let mut words = quote.split_whitespace();
    let Some(first) = words.next() else {
        return quote.to_string();
    };
    if keeps_capital(first, words.next()) {
        return quote.to_string();
    }
    let start = quote.len() - quote.trim_start().len();
    let Some((at, letter)) = quote[start..start + first.len()]
        .char_indices()
        .find(|(_, c)| c.is_alphabetic())
    else {
        return quote.to_string();
    };
    if !letter.is_uppercase() {
        return quote.to_string();
    }
    let at = start + at;
    let mut out = String::with_capacity(quote.len() + 2);
    out.push_str(&quote[..at]);
    out.extend(letter.to_lowercase());
    out.push_str(&quote[at + letter.len_utf8()..]);
    out
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Names and titles that open quotes in fortune's literature collection often enough to list.
const NAMES: [&str; 24] = [
    "God",
    "Lord",
    "Christ",
    "Jesus",
    "Shakespeare",
    "Hamlet",
    "Romeo",
    "Juliet",
    "Sherlock",
    "Holmes",
    "Watson",
    "Alice",
    "Oscar",
    "Twain",
    "Socrates",
    "Plato",
    "Aristotle",
    "Caesar",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "Sir",
    "Saint",
];

/// Capitalised only because they open a sentence: never the start of a name.
const OPENERS: [&str; 64] = [
    "A", "An", "The", "And", "But", "Or", "Nor", "So", "Yet", "If", "When", "While", "Where",
    "What", "Why", "How", "Who", "Whom", "Whose", "Which", "That", "This", "These", "Those",
    "There", "Here", "It", "Its", "He", "She", "We", "You", "They", "My", "Your", "His", "Her",
    "Our", "Their", "In", "On", "At", "Of", "To", "For", "From", "With", "By", "As", "All",
    "Every", "Each", "Some", "No", "Not", "Never", "Always", "One", "Do", "Is", "Let", "Once",
    "After", "Before",
];

fn keeps_capital(first: &str, next: Option<&str>) -> bool {
    let word = core(first);
    word == "I"
        || WEEKDAYS.contains(&word)
        || MONTHS.contains(&word)
        || NAMES.contains(&word)
        || is_acronym(word)
        || starts_a_name(word, next)
}

/// The word without surrounding punctuation and without a possessive or contraction.
fn core(word: &str) -> &str {
    let trimmed = word.trim_matches(|c: char| !c.is_alphanumeric());
    let end = trimmed.find(['\'', '’']).unwrap_or(trimmed.len());
    &trimmed[..end]
}

/// Two or more letters, all capitals; dots between them allowed (`U.S`).
fn is_acronym(word: &str) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 2
        && word
            .chars()
            .all(|c| c.is_uppercase() || c == '.' || c.is_ascii_digit())
}

/// A capitalised word followed by a capitalised word, and not a sentence opener.
fn starts_a_name(word: &str, next: Option<&str>) -> bool {
    let Some(next) = next.map(core) else {
        return false;
    };
    is_capitalised(word) && is_capitalised(next) && next != "I" && !OPENERS.contains(&word)
}

fn is_capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.all(|c| !c.is_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribution_is_cut_and_whitespace_collapsed() {
        let output = "  The  art of\tprogramming is the\n   art of organizing complexity.\n\
                      \t\t-- Edsger Dijkstra\n\nmore\n";
        assert_eq!(
            quote_from(output).as_deref(),
            Some("The art of programming is the art of organizing complexity.")
        );
        // Only a line that starts with `--` cuts; one inside a line does not.
        assert_eq!(quote_from("a -- b\nc\n--d").as_deref(), Some("a -- b c"));
        assert_eq!(quote_from("-- nobody"), None);
        assert_eq!(quote_from(" \n\t\n"), None);
        assert_eq!(quote_from(""), None);
    }

    #[test]
    fn the_first_letter_is_lowercased() {
        for (quote, want) in [
            ("The world is a stage.", "the world is a stage."),
            ("A fool thinks himself wise.", "a fool thinks himself wise."),
            ("\"Hello,\" she said.", "\"hello,\" she said."),
            ("Über alles.", "über alles."),
            ("The Lord of the Rings.", "the Lord of the Rings."),
            ("If God wills.", "if God wills."),
            ("When I was young.", "when I was young."),
            ("Ok then.", "ok then."),
            ("already lower.", "already lower."),
            ("42 is the answer.", "42 is the answer."),
            ("X marks the spot.", "x marks the spot."),
        ] {
            assert_eq!(lowercase_first(quote), want, "{quote}");
        }
    }

    #[test]
    fn some_first_words_keep_their_capital() {
        for quote in [
            "I think, therefore I am.",
            "I'm not here.",
            "I’d rather not.",
            "Monday is a fine day.",
            "Sunday's child.",
            "May the force be with you.",
            "December came.",
            "NASA's budget.",
            "U.S. history is long.",
            "OK, fine.",
            "TV rots the mind.",
            "God is in the details.",
            "Shakespeare wrote plays.",
            "Mr. Smith goes to Washington.",
            "Dr. Who.",
            "Mark Twain once said so.",
            "Sherlock Holmes smoked.",
            "\"Elizabeth Bennet,\" he began.",
        ] {
            assert_eq!(lowercase_first(quote), quote, "{quote}");
        }
    }

    #[test]
    fn nothing_to_lowercase() {
        assert_eq!(lowercase_first(""), "");
        assert_eq!(lowercase_first("..."), "...");
    }
}
