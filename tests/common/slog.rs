//! A strict reader of the daemon's log lines: it accepts exactly the shapes of Go slog's
//! TextHandler and JSONHandler with `AddSource` (SPEC §8) and says what is wrong with anything
//! else, so that a test can check every line of a run. It is written apart from
//! `src/logging` on purpose: it parses what the formatter writes instead of sharing its rules.
//!
//! Text: `time=<RFC 3339, 3 digits>Z level=<L> source=<file.rs>:<line> msg=<m> key=value…`,
//! one space between pairs, every value bare unless it needs quoting, quoted ones escaped as
//! Go's `strconv.Quote` escapes (and never quoted without need).
//! JSON: one compact object `{"time","level","source":{"function","file","line"},"msg",…}` in
//! that order, strings escaped as Go's `encoding/json` escapes with HTML escaping off.
//! In both: key fields after `msg`, each key once, none of the four reserved ones, and no empty
//! `error`.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

pub const LEVELS: [&str; 5] = ["DEBUG-4", "DEBUG", "INFO", "WARN", "ERROR"];
const RESERVED: [&str; 4] = ["time", "level", "source", "msg"];

#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub time: String,
    pub level: String,
    /// `file:line`
    pub source: String,
    pub msg: String,
    /// Key fields in order, values unquoted.
    pub fields: Vec<(String, String)>,
}

impl TextLine {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    Str(String),
    /// A number's text as written.
    Num(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsonLine {
    pub time: String,
    pub level: String,
    pub function: String,
    pub file: String,
    pub line: u64,
    pub msg: String,
    pub fields: Vec<(String, JsonValue)>,
}

impl JsonLine {
    pub fn field(&self, key: &str) -> Option<&JsonValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        match self.field(key) {
            Some(JsonValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn num_field(&self, key: &str) -> Option<&str> {
        match self.field(key) {
            Some(JsonValue::Num(n)) => Some(n),
            _ => None,
        }
    }
}

/// One text line (a trailing newline is allowed).
pub fn check_text_line(line: &str) -> Result<TextLine, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let pairs = text_pairs(line).map_err(|e| format!("{e} in {line:?}"))?;
    let mut pairs = pairs.into_iter();
    let mut next = |key: &str| match pairs.next() {
        Some((k, v)) if k == key => Ok(v),
        other => Err(format!("expected {key}=, got {other:?} in {line:?}")),
    };
    let time = next("time")?;
    check_time(&time, Fraction::Millis).map_err(|e| format!("{e} in {line:?}"))?;
    let level = next("level")?;
    check_level(&level).map_err(|e| format!("{e} in {line:?}"))?;
    let source = next("source")?;
    let (file, number) = source
        .rsplit_once(':')
        .ok_or_else(|| format!("source {source:?} is not file:line in {line:?}"))?;
    check_source(file, number).map_err(|e| format!("{e} in {line:?}"))?;
    let msg = next("msg")?;
    let fields: Vec<(String, String)> = pairs.collect();
    check_keys(fields.iter().map(|(k, v)| (k.as_str(), v.is_empty())))
        .map_err(|e| format!("{e} in {line:?}"))?;
    Ok(TextLine {
        time,
        level,
        source,
        msg,
        fields,
    })
}

/// One JSON line (a trailing newline is allowed).
pub fn check_json_line(line: &str) -> Result<JsonLine, String> {
    let text = line.strip_suffix('\n').unwrap_or(line);
    json_line(text).map_err(|e| format!("{e} in {line:?}"))
}

/// Every line of `log`, in `format` (`text` or `json`); fails with the first bad one.
pub fn check_lines(format: &str, log: &[String]) -> Result<(), String> {
    for (n, line) in log.iter().enumerate() {
        let checked = match format {
            "json" => check_json_line(line).map(|_| ()),
            _ => check_text_line(line).map(|_| ()),
        };
        checked.map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    Ok(())
}

/// Reads lines from `reader` on a thread, in order, until end of stream.
pub fn read_lines(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Collects lines from `lines` until one contains `needle`; fails after `limit`.
pub fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
    limit: Duration,
) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(e) => panic!(
                "no line with {needle:?} within {limit:?} ({e}); {} lines, last: {:?}",
                seen.len(),
                seen.last()
            ),
        }
    }
}

// ---- text ----

/// `key=value` pairs separated by single spaces, values unquoted.
fn text_pairs(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = line;
    loop {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("no = after {rest:?}"))?;
        check_bare(key).map_err(|e| format!("key {key:?}: {e}"))?;
        let (value, after) = if after.starts_with('"') {
            go_unquote(after)?
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let value = &after[..end];
            check_bare(value).map_err(|e| format!("bare value {value:?}: {e}"))?;
            (value.to_string(), &after[end..])
        };
        pairs.push((key.to_string(), value));
        if after.is_empty() {
            return Ok(pairs);
        }
        rest = after
            .strip_prefix(' ')
            .filter(|r| !r.is_empty() && !r.starts_with(' '))
            .ok_or_else(|| format!("pairs must be separated by one space: {after:?}"))?;
    }
}

/// What may stand bare: not empty, and no space, `=`, `"`, control, other white space, U+FFFD
/// (Go cannot tell it from a bad byte) or invisible format character.
fn check_bare(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty, must be quoted".into());
    }
    match value.chars().find(|&c| needs_quoting(c)) {
        Some(c) => Err(format!("{c:?} must be quoted")),
        None => Ok(()),
    }
}

fn needs_quoting(c: char) -> bool {
    matches!(c, ' ' | '=' | '"' | '\u{fffd}') || raw_forbidden(c)
}

/// Characters `strconv.Quote` never writes raw (a conservative subset of the non-printable
/// ones: controls, white space other than the ASCII space, common invisible format ones).
fn raw_forbidden(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(
            c,
            '\u{ad}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
        )
}

/// A Go-quoted string at the start of `s`: its value and what follows the closing quote.
fn go_unquote(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    chars.next(); // the opening quote
    let mut value: Vec<u8> = Vec::new();
    // Whether the quoting was needed: an escape other than `\\` says a character was
    // non-printable or a byte invalid.
    let mut needed = false;
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                let text = String::from_utf8_lossy(&value).into_owned();
                needed |= text.is_empty() || text.contains([' ', '=', '"', '\u{fffd}']);
                if !needed {
                    return Err(format!("{text:?} is quoted without need"));
                }
                return Ok((text, &s[at + 1..]));
            }
            '\\' => {
                let (_, kind) = chars.next().ok_or("a quoted value ends in a backslash")?;
                let short = match kind {
                    'a' => Some(0x07),
                    'b' => Some(0x08),
                    'f' => Some(0x0c),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(0x0b),
                    '\\' => Some(b'\\'),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(byte) = short {
                    needed |= kind != '\\';
                    value.push(byte);
                    continue;
                }
                let digits = match kind {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    other => return Err(format!("\\{other} is not an escape Go writes")),
                };
                let (hex, code) = lower_hex(&mut chars, digits)
                    .ok_or_else(|| format!("\\{kind} needs {digits} lowercase hex digits"))?;
                needed = true;
                match kind {
                    'x' => {
                        let has_short = matches!(code, 0x07..=0x0d);
                        if !(code < 0x20 && !has_short || code == 0x7f || code >= 0x80) {
                            return Err(format!("\\x{hex}: Go writes that byte otherwise"));
                        }
                        value.push(code as u8);
                    }
                    _ => {
                        let c = char::from_u32(code)
                            .ok_or_else(|| format!("\\{kind}{hex} is no character"))?;
                        if code < 0x80 || (kind == 'U') != (code >= 0x1_0000) {
                            return Err(format!(
                                "\\{kind}{hex}: Go writes that character otherwise"
                            ));
                        }
                        let mut utf8 = [0u8; 4];
                        value.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    }
                }
            }
            c if raw_forbidden(c) => return Err(format!("raw {c:?} inside quotes")),
            c => {
                let mut utf8 = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    Err("a quoted value is not closed".into())
}

// ---- shared checks ----

/// The next `digits` characters as lowercase hex (as Go writes it): the text and its value.
fn lower_hex(chars: &mut std::str::CharIndices<'_>, digits: usize) -> Option<(String, u32)> {
    let hex: String = chars.take(digits).map(|(_, c)| c).collect();
    let lower = hex.len() == digits && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    let code = u32::from_str_radix(&hex, 16).ok().filter(|_| lower)?;
    Some((hex, code))
}

enum Fraction {
    /// Exactly three digits (text).
    Millis,
    /// One to nine digits without trailing zeros, or none (JSON, Go's RFC3339Nano).
    Nano,
}

/// `YYYY-MM-DDTHH:MM:SS` then the fraction, then `Z` (UTC).
fn check_time(time: &str, fraction: Fraction) -> Result<(), String> {
    let b = time.as_bytes();
    let number = |from: usize, to: usize| -> Result<u32, String> {
        let part = time.get(from..to).ok_or("time too short")?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("time {time:?}: {part:?} is not digits"));
        }
        part.parse::<u32>().map_err(|e| e.to_string())
    };
    let (month, day) = (number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    number(0, 4)?;
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b[at] != c)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!("time {time:?} is not RFC 3339"));
    }
    let rest = &time[19..];
    let digits = rest
        .strip_suffix('Z')
        .ok_or_else(|| format!("time {time:?} is not in UTC (Z)"))?;
    let good = match fraction {
        Fraction::Millis => {
            digits.len() == 4
                && digits.starts_with('.')
                && digits[1..].bytes().all(|c| c.is_ascii_digit())
        }
        Fraction::Nano => {
            digits.is_empty()
                || (digits.starts_with('.')
                    && (2..=10).contains(&digits.len())
                    && digits[1..].bytes().all(|c| c.is_ascii_digit())
                    && !digits.ends_with('0'))
        }
    };
    if good {
        Ok(())
    } else {
        Err(format!("time {time:?} has the wrong fraction"))
    }
}

fn check_level(level: &str) -> Result<(), String> {
    if LEVELS.contains(&level) {
        Ok(())
    } else {
        Err(format!("level {level:?} is not one of {LEVELS:?}"))
    }
}

/// A Rust source file and a line number from 1, written without leading zeros.
fn check_source(file: &str, line: &str) -> Result<(), String> {
    let good_line =
        !line.is_empty() && !line.starts_with('0') && line.bytes().all(|c| c.is_ascii_digit());
    if file.len() > 3 && file.ends_with(".rs") && good_line {
        Ok(())
    } else {
        Err(format!("source {file:?}:{line:?} is not file.rs:line"))
    }
}

/// Key fields: each key once, none reserved, no empty `error`.
fn check_keys<'a>(keys: impl Iterator<Item = (&'a str, bool)>) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, empty) in keys {
        if RESERVED.contains(&key) || seen.contains(&key) {
            return Err(format!("key {key:?} repeats"));
        }
        if key == "error" && empty {
            return Err("an empty error field must be left out".into());
        }
        seen.push(key);
    }
    Ok(())
}

// ---- JSON ----

enum Json {
    Str(String),
    Num(String),
    Bool(bool),
    Obj(Vec<(String, Json)>),
}

fn json_line(text: &str) -> Result<JsonLine, String> {
    let mut parser = JsonParser { text, at: 0 };
    let Json::Obj(members) = parser.value()? else {
        return Err("a line must be one object".into());
    };
    if parser.at != text.len() {
        return Err(format!("text after the object at byte {}", parser.at));
    }
    let mut members = members.into_iter();
    let mut next = |key: &str| match members.next() {
        Some((k, v)) if k == key => Ok(v),
        Some((k, _)) => Err(format!("expected key {key:?}, got {k:?}")),
        None => Err(format!("no {key:?}")),
    };
    let Json::Str(time) = next("time")? else {
        return Err("time is not a string".into());
    };
    check_time(&time, Fraction::Nano)?;
    let Json::Str(level) = next("level")? else {
        return Err("level is not a string".into());
    };
    check_level(&level)?;
    let Json::Obj(source) = next("source")? else {
        return Err("source is not an object".into());
    };
    let (function, file, line) = match source.as_slice() {
        [(f, Json::Str(function)), (fi, Json::Str(file)), (l, Json::Num(line))]
            if f == "function" && fi == "file" && l == "line" =>
        {
            (function.clone(), file.clone(), line.clone())
        }
        _ => return Err("source must be {function, file, line}".into()),
    };
    let module_path = function.split("::").all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !module_path {
        return Err(format!("function {function:?} is not a module path"));
    }
    check_source(&file, &line)?;
    let Json::Str(msg) = next("msg")? else {
        return Err("msg is not a string".into());
    };
    let mut fields = Vec::new();
    for (key, value) in members {
        let value = match value {
            Json::Str(s) => JsonValue::Str(s),
            Json::Num(n) => JsonValue::Num(n),
            Json::Bool(b) => JsonValue::Bool(b),
            Json::Obj(_) => return Err(format!("field {key:?} is an object")),
        };
        fields.push((key, value));
    }
    check_keys(
        fields
            .iter()
            .map(|(k, v)| (k.as_str(), *v == JsonValue::Str(String::new()))),
    )?;
    Ok(JsonLine {
        time,
        level,
        function,
        file,
        line: line.parse().map_err(|_| format!("line {line:?}"))?,
        msg,
        fields,
    })
}

/// Compact JSON (no white space) as Go writes it: objects, strings, numbers and booleans.
struct JsonParser<'a> {
    text: &'a str,
    at: usize,
}

impl JsonParser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.rest().chars().next() {
            Some('{') => self.object(),
            Some('"') => self.string().map(Json::Str),
            Some('t') if self.eat("true") => Ok(Json::Bool(true)),
            Some('f') if self.eat("false") => Ok(Json::Bool(false)),
            Some('-' | '0'..='9') => self.number(),
            other => Err(format!("unexpected {other:?} at byte {}", self.at)),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.eat("{");
        let mut members = Vec::new();
        if self.eat("}") {
            return Ok(Json::Obj(members));
        }
        loop {
            if !self.rest().starts_with('"') {
                return Err(format!("expected a key at byte {}", self.at));
            }
            let key = self.string()?;
            if !self.eat(":") {
                return Err(format!("expected : at byte {}", self.at));
            }
            members.push((key, self.value()?));
            if self.eat("}") {
                return Ok(Json::Obj(members));
            }
            if !self.eat(",") {
                return Err(format!("expected , or }} at byte {}", self.at));
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-]?[0-9]+)?`
    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let n = p.rest().bytes().take_while(u8::is_ascii_digit).count();
            p.at += n;
            n
        };
        self.eat("-");
        if !self.eat("0") && digits(self) == 0 {
            return Err(format!("bad number at byte {start}"));
        }
        if self.eat(".") && digits(self) == 0 {
            return Err(format!("bad fraction at byte {start}"));
        }
        if self.eat("e") {
            let _ = self.eat("+") || self.eat("-");
            if digits(self) == 0 {
                return Err(format!("bad exponent at byte {start}"));
            }
        }
        Ok(Json::Num(self.text[start..self.at].to_string()))
    }

    /// A string escaped exactly as Go's encoding/json (HTML escaping off) writes it.
    fn string(&mut self) -> Result<String, String> {
        self.eat("\"");
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += at + 1;
                    return Ok(out);
                }
                '\\' => {
                    let (_, kind) = chars.next().ok_or("a string ends in a backslash")?;
                    match kind {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let (hex, code) = lower_hex(&mut chars, 4)
                                .ok_or("\\u needs 4 lowercase hex digits")?;
                            // Control characters without a short escape; the two line separators;
                            // U+FFFD for a byte that was not UTF-8. Go writes all else raw.
                            let escaped = matches!(code, 0..=0x1f | 0x2028 | 0x2029 | 0xfffd)
                                && !matches!(code, 0x09 | 0x0a | 0x0d);
                            let c = char::from_u32(code)
                                .filter(|_| escaped)
                                .ok_or_else(|| format!("\\u{hex} is not an escape Go writes"))?;
                            out.push(c);
                        }
                        other => return Err(format!("\\{other} is not an escape Go writes")),
                    }
                }
                c if c < ' ' || c == '\u{2028}' || c == '\u{2029}' => {
                    return Err(format!("raw {c:?} in a string"))
                }
                c => out.push(c),
            }
        }
        Err("a string is not closed".into())
    }
}
