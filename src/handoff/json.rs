//! One level of JSON text that serde_json has already validated: an object's members in document
//! order with duplicates kept, an array's elements, every nested value left as its own text.
//!
//! serde_json's `Map` keeps neither order nor duplicates (its `preserve_order` feature would
//! bring in `indexmap`, which the dependency rules exclude), and its `Value` rewrites numbers
//! (`2.5e3` becomes `2.5e+3`). The handoff needs all three kept: `response_headers` members in
//! the order written, every file an `attachments` key names even when the key is repeated, and
//! `langgraph_input` numbers forwarded as written. Only strings are decoded, by serde_json.
//!
//! The input is always text serde_json accepted as one JSON value (a `RawValue`), so this
//! walker only has to find where each value ends; should it ever meet anything else it says
//! [`Malformed`] rather than guess, and it never panics.

use serde_json::value::RawValue;

/// A JSON value kept as the client wrote it (numbers, member order, whitespace, escapes).
#[derive(Debug, Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Checks that `text` is one JSON value.
    pub fn parse(text: &str) -> Result<RawJson, serde_json::Error> {
        RawValue::from_string(text.to_string()).map(RawJson)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

/// One JSON value, its children still as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// The number exactly as written (`1.50`, `4.2e1`).
    Number(&'a str),
    String(String),
    Array(Vec<&'a str>),
    /// Members in document order; a repeated name appears once per occurrence.
    Object(Vec<(String, &'a str)>),
}

impl Json<'_> {
    /// What the value is, for messages such as "prompt must be a string, not a number".
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Text that is not one complete JSON value (never the case for text serde_json validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Reads one JSON value, one level deep.
pub fn read(text: &str) -> Result<Json<'_>, Malformed> {
    let text = text.trim_matches(is_space);
    match text.as_bytes().first() {
        Some(b'{') => members(text).map(Json::Object),
        Some(b'[') => elements(text).map(Json::Array),
        Some(b'"') => serde_json::from_str(text)
            .map(Json::String)
            .map_err(|_| Malformed),
        Some(b'-' | b'0'..=b'9') if is_number(text) => Ok(Json::Number(text)),
        _ => match text {
            "null" => Ok(Json::Null),
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err(Malformed),
        },
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_number(text: &str) -> bool {
    fn digits(rest: &[u8]) -> usize {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    match bytes.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(&bytes[i..]),
        _ => return false,
    }
    if bytes.get(i) == Some(&b'.') {
        let n = digits(&bytes[i + 1..]);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(bytes.get(i..).unwrap_or_default());
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == bytes.len()
}

/// JSON's insignificant whitespace.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A position in the text of one object or array.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Just inside the opening bracket.
    fn inside(text: &'a str) -> Self {
        Cursor { text, pos: 1 }
    }

    fn skip_space(&mut self) {
        while self
            .text
            .as_bytes()
            .get(self.pos)
            .is_some_and(|&b| is_space(char::from(b)))
        {
            self.pos += 1;
        }
    }

    /// Consumes `byte` (after any whitespace) if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.text.as_bytes().get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The next value's text (after any whitespace).
    fn value(&mut self) -> Result<&'a str, Malformed> {
        self.skip_space();
        let start = self.pos;
        let end = value_end(self.text.as_bytes(), start)?;
        self.pos = end;
        self.text.get(start..end).ok_or(Malformed)
    }

    /// After the closing bracket: nothing may follow.
    fn finish(&self) -> Result<(), Malformed> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

fn members(text: &str) -> Result<Vec<(String, &str)>, Malformed> {
    let mut cursor = Cursor::inside(text);
    let mut out = Vec::new();
    if !cursor.eat(b'}') {
        loop {
            let key = cursor.value()?;
            if !key.starts_with('"') {
                return Err(Malformed);
            }
            let key: String = serde_json::from_str(key).map_err(|_| Malformed)?;
            if !cursor.eat(b':') {
                return Err(Malformed);
            }
            out.push((key, cursor.value()?));
            if cursor.eat(b'}') {
                break;
            }
            if !cursor.eat(b',') {
                return Err(Malformed);
            }
        }
    }
    cursor.finish()?;
    Ok(out)
}

fn elements(text: &str) -> Result<Vec<&str>, Malformed> {
    let mut cursor = Cursor::inside(text);
    let mut out = Vec::new();
    if !cursor.eat(b']') {
        loop {
            out.push(cursor.value()?);
            if cursor.eat(b']') {
                break;
            }
            if !cursor.eat(b',') {
                return Err(Malformed);
            }
        }
    }
    cursor.finish()?;
    Ok(out)
}

/// Where the value starting at `start` ends (one past its last byte).
fn value_end(bytes: &[u8], start: usize) -> Result<usize, Malformed> {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&byte) = bytes.get(i) {
                match byte {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1).ok_or(Malformed)?;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(Malformed)
        }
        Some(_) => {
            // A number or a literal runs to the next delimiter.
            let len = bytes[start..]
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']' | b':') || is_space(char::from(b)))
                .unwrap_or(bytes.len() - start);
            if len == 0 {
                Err(Malformed)
            } else {
                Ok(start + len)
            }
        }
        None => Err(Malformed),
    }
}

/// One past the closing quote of the string whose opening quote is at `start`.
fn string_end(bytes: &[u8], start: usize) -> Result<usize, Malformed> {
    let mut i = start + 1;
    loop {
        match bytes.get(i) {
            // An escape covers the next byte, which is ASCII in valid JSON (`\"`, `\\`, `\u`).
            Some(b'\\') => i += 2,
            Some(b'"') => return Ok(i + 1),
            Some(_) => i += 1,
            None => return Err(Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(read(" null "), Ok(Json::Null));
        assert_eq!(read("true"), Ok(Json::Bool(true)));
        assert_eq!(read("false"), Ok(Json::Bool(false)));
        assert_eq!(read("-4.2e1"), Ok(Json::Number("-4.2e1")));
        assert_eq!(read(r#""a\"b\u00e9""#), Ok(Json::String("a\"bé".into())));
    }

    #[test]
    fn members_keep_order_duplicates_and_text() {
        let text = r#"{ "b" : 1.50 , "a":{"x":[1,"]}"]},"b":"s\"}", "e\u0301":[] }"#;
        assert_eq!(
            read(text),
            Ok(Json::Object(vec![
                ("b".into(), "1.50"),
                ("a".into(), r#"{"x":[1,"]}"]}"#),
                ("b".into(), r#""s\"}""#),
                ("e\u{301}".into(), "[]"),
            ]))
        );
        assert_eq!(read("{}"), Ok(Json::Object(vec![])));
        assert_eq!(read("{ }"), Ok(Json::Object(vec![])));
    }

    #[test]
    fn elements_keep_text() {
        assert_eq!(
            read(r#"[ 1 ,"a\\",{"k":[]} ,null]"#),
            Ok(Json::Array(vec!["1", r#""a\\""#, r#"{"k":[]}"#, "null"]))
        );
        assert_eq!(read("[]"), Ok(Json::Array(vec![])));
    }

    #[test]
    fn what_is_not_one_value_is_malformed_not_a_panic() {
        for text in [
            "",
            "{",
            "[",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{1:2}",
            "\"open",
            "nul",
            "{\"a\":1}x",
            "[1]]",
            "]",
            "-",
            "{\"a\":1 \"b\":2}",
            "\"\\",
            "01",
            "1.",
            "1e",
            "1e+",
            "-a",
            "1.5.5",
            "+1",
            ".5",
        ] {
            assert_eq!(read(text), Err(Malformed), "{text:?}");
        }
    }

    #[test]
    fn every_prefix_of_valid_text_is_handled() {
        let text = r#"{"a":[1,{"b":"c\"d"}],"e":-1.5e3,"f":true}"#;
        for end in 0..text.len() {
            let _ = read(&text[..end]);
        }
        assert!(matches!(read(text), Ok(Json::Object(m)) if m.len() == 3));
    }
}
