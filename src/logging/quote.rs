//! How a string is written into a log line, as Go's slog writes it: in text logs bare or quoted
//! as `strconv.Quote` does, in JSON logs escaped as `encoding/json` does without HTML escaping.
//!
//! Both take bytes, not `&str`, so that the rules for invalid UTF-8 are real code with tests
//! (every log value is a Rust string today, but masking or a future caller must not be able to
//! turn a stray byte into a raw one). Neither can ever emit a raw newline: a value cannot start
//! a forged line.

use super::printable::is_printable;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether slog's TextHandler quotes `value`: when it is empty or holds a space, `=`, `"`, a
/// control or non-printing character, or invalid UTF-8. U+FFFD counts as invalid, because Go's
/// decoder reports it and a bad byte alike.
///
/// One difference from Go on purpose: Go leaves DEL (0x7F) bare through a quirk of the table it
/// borrows from encoding/json; DEL is a control character, so it is quoted here, as SPEC §8 says.
pub fn text_needs_quoting(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    value.utf8_chunks().any(|chunk| {
        !chunk.invalid().is_empty()
            || chunk.valid().chars().any(|c| match c {
                ' ' | '=' | '"' | '\u{fffd}' => true,
                c => !is_printable(c),
            })
    })
}

/// Appends `value` as slog's TextHandler writes a value or key: bare, or quoted when needed.
pub fn push_text_value(out: &mut Vec<u8>, value: &[u8]) {
    if text_needs_quoting(value) {
        push_go_quoted(out, value);
    } else {
        out.extend_from_slice(value);
    }
}

/// Appends `value` as Go's `strconv.Quote` writes it: `\a \b \f \n \r \t \v \\ \"`; `\xNN` for
/// other control characters, DEL and each byte of invalid UTF-8; `\uNNNN` or `\UNNNNNNNN` for
/// other non-printable characters; printable characters, ASCII or not, as they are.
pub fn push_go_quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_go_escaped_char(out, c);
        }
        for &byte in chunk.invalid() {
            push_hex(out, b"\\x", u32::from(byte), 2);
        }
    }
    out.push(b'"');
}

fn push_go_escaped_char(out: &mut Vec<u8>, c: char) {
    let short: &[u8] = match c {
        '"' => b"\\\"",
        '\\' => b"\\\\",
        '\x07' => b"\\a",
        '\x08' => b"\\b",
        '\x0c' => b"\\f",
        '\n' => b"\\n",
        '\r' => b"\\r",
        '\t' => b"\\t",
        '\x0b' => b"\\v",
        _ => b"",
    };
    let code = u32::from(c);
    if !short.is_empty() {
        out.extend_from_slice(short);
    } else if is_printable(c) {
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    } else if code < 0x20 || code == 0x7f {
        push_hex(out, b"\\x", code, 2);
    } else if code < 0x1_0000 {
        push_hex(out, b"\\u", code, 4);
    } else {
        push_hex(out, b"\\U", code, 8);
    }
}

/// Appends `value` as a JSON string the way Go's `encoding/json` writes it with HTML escaping
/// off: `\"`, `\\`, `\n`, `\r`, `\t`; other control characters as `\u00XX`; U+2028 and U+2029
/// as `\u2028` and `\u2029` (JavaScript reads them as line ends); each byte of invalid UTF-8 as
/// `\ufffd`; everything else, DEL and non-ASCII included, as it is.
pub fn push_json_string(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for chunk in value.utf8_chunks() {
        let valid = chunk.valid();
        let mut plain_from = 0;
        for (at, c) in valid.char_indices() {
            let escape: &[u8] = match c {
                '"' => b"\\\"",
                '\\' => b"\\\\",
                '\n' => b"\\n",
                '\r' => b"\\r",
                '\t' => b"\\t",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                c if c < ' ' => b"",
                _ => continue,
            };
            out.extend_from_slice(&valid.as_bytes()[plain_from..at]);
            plain_from = at + c.len_utf8();
            if escape.is_empty() {
                push_hex(out, b"\\u", u32::from(c), 4);
            } else {
                out.extend_from_slice(escape);
            }
        }
        out.extend_from_slice(&valid.as_bytes()[plain_from..]);
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// `prefix` then `value` in `digits` lowercase hex digits.
fn push_hex(out: &mut Vec<u8>, prefix: &[u8], value: u32, digits: u32) {
    out.extend_from_slice(prefix);
    for shift in (0..digits).rev() {
        out.push(HEX[(value >> (4 * shift) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go_quote(value: &[u8]) -> String {
        let mut out = Vec::new();
        push_go_quoted(&mut out, value);
        String::from_utf8(out).expect("quoting yields UTF-8")
    }

    fn text(value: &[u8]) -> String {
        let mut out = Vec::new();
        push_text_value(&mut out, value);
        String::from_utf8(out).expect("quoting yields UTF-8")
    }

    fn json(value: &[u8]) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, value);
        String::from_utf8(out).expect("escaping yields UTF-8")
    }

    /// The cases of Go's own `strconv` quote tests that apply to `Quote`.
    #[test]
    fn quotes_as_go_strconv_quote() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x07\x08\x0c\r\n\t\x0b", r#""\a\b\f\r\n\t\v""#),
            (b"\\", r#""\\""#),
            (b"abc\xffdef", r#""abc\xffdef""#),
            ("\u{263a}".as_bytes(), "\"\u{263a}\""),
            ("\u{10ffff}".as_bytes(), r#""\U0010ffff""#),
            (b"\x04", r#""\x04""#),
            (
                "!\u{a0}!\u{2000}!\u{3000}!".as_bytes(),
                r#""!\u00a0!\u2000!\u3000!""#,
            ),
            (b"\x7f", r#""\x7f""#),
            (b"say \"hi\"", r#""say \"hi\"""#),
            ("caf\u{e9} \u{1f600}".as_bytes(), "\"caf\u{e9} \u{1f600}\""),
            (
                "\u{202e}\u{feff}\u{2028}".as_bytes(),
                r#""\u202e\ufeff\u2028""#,
            ),
            ("\u{e0001}".as_bytes(), r#""\U000e0001""#),
            // A cut three-byte sequence: each byte is escaped on its own, as Go decodes it.
            (b"\xe2\x82", r#""\xe2\x82""#),
            // Surrogates encoded in UTF-8 are invalid UTF-8.
            (b"\xed\xa0\x80", r#""\xed\xa0\x80""#),
        ];
        for (value, quoted) in cases {
            assert_eq!(go_quote(value), *quoted, "{value:?}");
        }
    }

    #[test]
    fn text_values_are_bare_unless_they_must_be_quoted() {
        let bare: &[&[u8]] = &[
            b"completed",
            b"src/conn/mod.rs:12",
            b"a\\b",
            b"-1.5",
            b"http://x/y?z",
            "caf\u{e9}".as_bytes(),
            "\u{4e2d}\u{6587}".as_bytes(),
        ];
        for value in bare {
            assert_eq!(text(value).as_bytes(), *value);
        }
        let quoted: &[(&[u8], &str)] = &[
            (b"", r#""""#),
            (b"two words", r#""two words""#),
            (b"a=b", r#""a=b""#),
            (b"a\"b", r#""a\"b""#),
            (b"line\nforged=1", r#""line\nforged=1""#),
            (b"cr\r", r#""cr\r""#),
            (b"del\x7f", r#""del\x7f""#),
            (b"bad\xff", r#""bad\xff""#),
            ("nbsp\u{a0}".as_bytes(), r#""nbsp\u00a0""#),
            ("nel\u{85}".as_bytes(), r#""nel\u0085""#),
            ("\u{fffd}".as_bytes(), "\"\u{fffd}\""),
            ("bidi\u{202e}".as_bytes(), r#""bidi\u202e""#),
        ];
        for (value, expected) in quoted {
            assert_eq!(text(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn json_strings_as_go_encoding_json() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", r#""plain""#),
            (b"q\"b\\", r#""q\"b\\""#),
            (b"\n\r\t", r#""\n\r\t""#),
            (
                b"\x00\x08\x0c\x1b\x1f",
                r#""\u0000\u0008\u000c\u001b\u001f""#,
            ),
            (b"del\x7f", "\"del\x7f\""),
            (b"<a&b>", r#""<a&b>""#),
            ("\u{2028}x\u{2029}".as_bytes(), r#""\u2028x\u2029""#),
            ("caf\u{e9} \u{202e}".as_bytes(), "\"caf\u{e9} \u{202e}\""),
            (b"bad\xff\xfe!", r#""bad\ufffd\ufffd!""#),
            (b"\xe2\x82", r#""\ufffd\ufffd""#),
            (b"", r#""""#),
        ];
        for (value, expected) in cases {
            assert_eq!(json(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn json_strings_read_back_as_written() {
        let values = [
            "any \"thing\" \\ with\nnew\rlines\tand \u{1} \u{7f} \u{2028} caf\u{e9} \u{1f600}",
            "",
            "\u{0}",
        ];
        for value in values {
            let parsed: String = serde_json::from_str(&json(value.as_bytes())).expect("valid JSON");
            assert_eq!(parsed, value);
        }
    }

    #[test]
    fn nothing_written_holds_a_raw_line_end() {
        // Every byte value, alone and amid text, in both formats.
        for byte in 0..=255u8 {
            let value = [b'a', byte, b'\n', b'z'];
            for written in [text(&value), json(&value)] {
                assert!(!written.contains(['\n', '\r']), "{written:?}");
                assert!(!written.contains(['\u{2028}', '\u{2029}', '\u{85}']));
            }
        }
    }
}
