//! The YAML subset configuration files use, read into a small tree whose nodes remember their
//! line and column so that every later error can point at the text.
//!
//! | accepted | rejected (an error at line:col) |
//! |---|---|
//! | `#` comments on their own line or after a value (after whitespace) | tabs in indentation |
//! | nested block mappings by indentation, any consistent width | indentation that matches no open block |
//! | plain scalars, `'single'` (`''` escapes a quote), `"double"` with escapes | multi-line scalars, `\|` and `>` blocks |
//! | `~`, `null` and an empty value as null | anchors `&`, aliases `*`, tags `!`, complex keys `?` |
//! | flow collections on one line, nested: `[a, 'b']`, `{k: v, l: [x]}`, `{}`, `[]` | flow collections spanning lines, more than 16 levels deep |
//! | block lists of single values or flow collections, indented or level with their key | block lists of block mappings, nested block lists |
//! | one leading `---`, a byte-order mark, CRLF line ends | more documents, `...`, `%` directives, duplicate keys |
//!
//! Scalars stay text: whether `0660` is a number or `yes` a boolean is decided by the setting
//! that reads it, which is how YAML 1.1 readers such as the Go daemon's behave for these files.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    /// In characters, starting at 1.
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Scalar(String),
    /// Entries in file order; keys are unique.
    Map(Vec<Entry>),
    List(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)
    }
}

/// Reads a whole document. A document with no content is `Null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser {
        lines: content_lines(text)?,
        next: 0,
    };
    let Some(first) = parser.peek() else {
        return Ok(Node {
            pos: Pos { line: 1, col: 1 },
            value: Value::Null,
        });
    };
    let root = parser.block(first.indent)?;
    match parser.peek() {
        // Only a line indented less than the first one can be left over.
        Some(line) => Err(line.error(
            0,
            "this line is indented less than the start of the document",
        )),
        None => Ok(root),
    }
}

/// One line that holds content: not blank, not only a comment, not a document marker.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    indent: usize,
    /// After the indentation, without trailing whitespace; may end in a comment.
    text: &'a str,
}

impl Line<'_> {
    fn pos(&self, offset: usize) -> Pos {
        let chars_before = self
            .text
            .get(..offset)
            .map_or(0, |prefix| prefix.chars().count());
        Pos {
            line: self.number,
            col: self.indent + 1 + chars_before,
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> YamlError {
        YamlError {
            pos: self.pos(offset),
            message: message.into(),
        }
    }
}

fn content_lines(text: &str) -> Result<Vec<Line<'_>>, YamlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Vec::new();
    let mut document_started = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let unindented = raw.trim_start_matches(' ');
        let indent = raw.len() - unindented.len();
        let at = |col_offset: usize, message: &str| YamlError {
            pos: Pos {
                line: number,
                col: indent + 1 + col_offset,
            },
            message: message.to_string(),
        };
        let content = unindented.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if unindented.starts_with('\t') {
            return Err(at(
                0,
                "a tab is used for indentation; YAML allows only spaces there",
            ));
        }
        if indent == 0 {
            if content.starts_with('%') {
                return Err(at(
                    0,
                    "directives (%YAML, %TAG) are not supported; remove the line",
                ));
            }
            if is_marker(content, "---") {
                if document_started {
                    return Err(at(0, "a second document (---) is not supported: one file holds one configuration"));
                }
                if !ends_cleanly(&content[3..]) {
                    return Err(at(
                        4,
                        "content on the --- line is not supported; start it on the next line",
                    ));
                }
                document_started = true;
                continue;
            }
            if is_marker(content, "...") {
                return Err(at(
                    0,
                    "the document end marker (...) is not supported; remove it",
                ));
            }
        }
        document_started = true;
        lines.push(Line {
            number,
            indent,
            text: unindented.trim_end_matches([' ', '\t']),
        });
    }
    Ok(lines)
}

fn is_marker(text: &str, marker: &str) -> bool {
    text.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

fn is_blank_or_comment(text: &str) -> bool {
    let trimmed = text.trim_start_matches([' ', '\t']);
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// What may follow a token that ends mid-line (a closing quote or bracket): nothing, or
/// whitespace and a comment, since YAML needs the space before `#`.
fn ends_cleanly(rest: &str) -> bool {
    rest.is_empty() || (rest.starts_with([' ', '\t']) && is_blank_or_comment(rest))
}

fn is_list_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ") || text.starts_with("-\t")
}

/// Where a comment starts: a `#` at the start or after whitespace (`a#b` is plain text).
fn comment_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')))
}

/// Where a `:` that ends a key sits: followed by whitespace or the end of the text.
fn key_colon(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')))
}

fn skip_spaces(text: &str, offset: usize) -> usize {
    let rest = &text[offset..];
    offset + rest.len() - rest.trim_start_matches([' ', '\t']).len()
}

/// Why a value starting with `indicator` is refused, for the YAML features outside our subset.
fn unsupported_indicator(indicator: char) -> Option<&'static str> {
    Some(match indicator {
        '&' => "anchors (&) are not supported; repeat the value instead",
        '*' => "aliases (*) are not supported; repeat the value instead",
        '!' => "tags (!) are not supported; remove the tag",
        '|' | '>' => "block scalars (| and >) are not supported; write the value on one line, quoted if needed",
        '?' => "complex keys (?) are not supported",
        '@' | '`' => "'@' and '`' cannot start a plain value; quote the value",
        _ => return None,
    })
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// The block (mapping or list) whose first line is the next one, at `indent`.
    fn block(&mut self, indent: usize) -> Result<Node, YamlError> {
        match self.peek() {
            Some(line) if is_list_item(line.text) => self.list(indent),
            _ => self.map(indent),
        }
    }

    fn map(&mut self, indent: usize) -> Result<Node, YamlError> {
        let pos = self
            .peek()
            .map_or(Pos { line: 1, col: 1 }, |line| line.pos(0));
        let mut entries: Vec<Entry> = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return Err(line.error(
                    0,
                    "unexpected indentation (values cannot continue on the next line)",
                ));
            }
            if is_list_item(line.text) {
                return Err(line.error(0, "a list item where a `key: value` line was expected"));
            }
            let (key, value_offset) = split_key(&line)?;
            if let Some(earlier) = entries.iter().find(|entry| entry.key == key) {
                return Err(line.error(
                    0,
                    format!(
                        "duplicate key \"{key}\" (first set on line {})",
                        earlier.key_pos.line
                    ),
                ));
            }
            self.next += 1;
            let node = if is_blank_or_comment(&line.text[value_offset..]) {
                match self.peek() {
                    Some(below) if below.indent > indent => self.block(below.indent)?,
                    Some(below) if below.indent == indent && is_list_item(below.text) => {
                        self.list(indent)?
                    }
                    _ => Node {
                        pos: line.pos(value_offset),
                        value: Value::Null,
                    },
                }
            } else {
                inline_value(&line, value_offset)?
            };
            entries.push(Entry {
                key,
                key_pos: line.pos(0),
                node,
            });
        }
        Ok(Node {
            pos,
            value: Value::Map(entries),
        })
    }

    fn list(&mut self, indent: usize) -> Result<Node, YamlError> {
        let pos = self
            .peek()
            .map_or(Pos { line: 1, col: 1 }, |line| line.pos(0));
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && !is_list_item(line.text)) {
                break;
            }
            if line.indent > indent {
                return Err(line.error(
                    0,
                    "unexpected indentation (list items must be single values)",
                ));
            }
            self.next += 1;
            let offset = skip_spaces(line.text, 1);
            let item = &line.text[offset..];
            if is_blank_or_comment(item) {
                return Err(line.error(0, "an empty list item; write the value after the dash"));
            }
            if is_list_item(item) {
                return Err(line.error(offset, "nested lists are not supported"));
            }
            if !item.starts_with(['"', '\'', '[', '{'])
                && key_colon(&item[..comment_start(item).unwrap_or(item.len())]).is_some()
            {
                return Err(line.error(
                    offset,
                    "lists of mappings are not supported; list items must be single values",
                ));
            }
            items.push(inline_value(&line, offset)?);
        }
        Ok(Node {
            pos,
            value: Value::List(items),
        })
    }
}

/// Splits `key: value`, returning the key and the offset where the value (or comment) starts.
fn split_key(line: &Line<'_>) -> Result<(String, usize), YamlError> {
    let text = line.text;
    let first = text.chars().next().unwrap_or(' ');
    let (key, after_key) = if first == '"' || first == '\'' {
        let (key, end) = quoted(line, 0)?;
        let colon = skip_spaces(text, end);
        if key_colon(&text[colon..]) != Some(0) {
            return Err(line.error(colon, "expected ':' after the quoted key"));
        }
        (key, colon + 1)
    } else {
        if let Some(message) = unsupported_indicator(first) {
            return Err(line.error(0, message));
        }
        if matches!(first, '[' | '{') {
            return Err(line.error(0, "a key cannot start with '[' or '{'; quote the key"));
        }
        let searchable = &text[..comment_start(text).unwrap_or(text.len())];
        let colon = key_colon(searchable).ok_or_else(|| {
            line.error(
                0,
                "expected `key: value` (a key, a colon and a space, then the value)",
            )
        })?;
        let key = text[..colon].trim_end();
        if key.is_empty() {
            return Err(line.error(0, "a key is missing before ':'"));
        }
        (key.to_string(), colon + 1)
    };
    Ok((key, skip_spaces(text, after_key)))
}

/// The value that starts at `offset` and runs to the end of the line (or a comment).
fn inline_value(line: &Line<'_>, offset: usize) -> Result<Node, YamlError> {
    let text = &line.text[offset..];
    let pos = line.pos(offset);
    let scalar = |value| Ok(Node { pos, value });
    let first = text.chars().next().unwrap_or(' ');
    match first {
        '"' | '\'' => {
            let (value, end) = quoted(line, offset)?;
            if !ends_cleanly(&line.text[end..]) {
                return Err(line.error(end, "unexpected text after the closing quote"));
            }
            scalar(Value::Scalar(value))
        }
        '{' | '[' => {
            let mut flow = Flow { line, at: offset };
            let node = flow.node(0)?;
            if !ends_cleanly(&line.text[flow.at..]) {
                return Err(line.error(flow.at, "unexpected text after the closing bracket"));
            }
            Ok(node)
        }
        '-' if is_list_item(text) => Err(line.error(
            offset,
            "a list cannot start on the same line as its key; put each `- item` on its own line below it",
        )),
        _ => {
            if let Some(message) = unsupported_indicator(first).filter(|_| first != '?' || is_marker(text, "?")) {
                return Err(line.error(offset, message));
            }
            let plain = text[..comment_start(text).unwrap_or(text.len())].trim_end();
            if let Some(colon) = key_colon(plain) {
                return Err(line.error(offset + colon, "a value cannot contain ': ' unless it is quoted"));
            }
            match plain {
                "~" | "null" | "Null" | "NULL" => scalar(Value::Null),
                _ => scalar(Value::Scalar(plain.to_string())),
            }
        }
    }
}

/// Flow collections nest at most this deep: no configuration needs more, and the parser
/// recurses once per level.
const MAX_FLOW_DEPTH: usize = 16;

/// A flow collection (`[a, b]`, `{k: v, l: [x]}`) that opens and closes on one line, read from
/// `at` on.
struct Flow<'l, 'a> {
    line: &'l Line<'a>,
    /// Byte offset into the line's text.
    at: usize,
}

impl<'a> Flow<'_, 'a> {
    fn peek(&self) -> Option<u8> {
        self.line.text.as_bytes().get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        self.at = skip_spaces(self.line.text, self.at);
    }

    /// One value: a nested collection, a quoted scalar or a plain one.
    fn node(&mut self, depth: usize) -> Result<Node, YamlError> {
        self.skip_spaces();
        let start = self.at;
        let pos = self.line.pos(start);
        match self.peek() {
            Some(open @ (b'[' | b'{')) => {
                if depth == MAX_FLOW_DEPTH {
                    return Err(self
                        .line
                        .error(start, "flow collections are nested too deeply"));
                }
                self.at += 1;
                let value = if open == b'[' {
                    Value::List(self.items(depth, start)?)
                } else {
                    Value::Map(self.entries(depth, start)?)
                };
                Ok(Node { pos, value })
            }
            Some(b'"' | b'\'') => {
                let (text, end) = quoted(self.line, start)?;
                self.at = end;
                Ok(Node {
                    pos,
                    value: Value::Scalar(text),
                })
            }
            _ => {
                let text = self.plain(start)?;
                let value = match text {
                    "~" | "null" | "Null" | "NULL" => Value::Null,
                    _ => Value::Scalar(text.to_string()),
                };
                Ok(Node { pos, value })
            }
        }
    }

    /// The items of a `[` list whose bracket is at `open`, up to and past its `]`.
    fn items(&mut self, depth: usize, open: usize) -> Result<Vec<Node>, YamlError> {
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            if self.close(b']', open)? {
                return Ok(items);
            }
            items.push(self.node(depth + 1)?);
            if self.separator(b']', open)? {
                return Ok(items);
            }
        }
    }

    /// The entries of a `{` mapping whose brace is at `open`, up to and past its `}`.
    fn entries(&mut self, depth: usize, open: usize) -> Result<Vec<Entry>, YamlError> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            self.skip_spaces();
            if self.close(b'}', open)? {
                return Ok(entries);
            }
            let key_at = self.at;
            let key = match self.peek() {
                Some(b'"' | b'\'') => {
                    let (key, end) = quoted(self.line, key_at)?;
                    self.at = end;
                    key
                }
                _ => self.plain(key_at)?.to_string(),
            };
            self.skip_spaces();
            if self.peek() != Some(b':') {
                return Err(self.line.error(
                    self.at,
                    "expected ':' after the key (write `{key: value, other: value}`)",
                ));
            }
            self.at += 1;
            if entries.iter().any(|entry| entry.key == key) {
                return Err(self
                    .line
                    .error(key_at, format!("duplicate key \"{key}\" in this mapping")));
            }
            self.skip_spaces();
            let node = match self.peek() {
                Some(b',' | b'}') => Node {
                    pos: self.line.pos(self.at),
                    value: Value::Null,
                },
                _ => self.node(depth + 1)?,
            };
            entries.push(Entry {
                key,
                key_pos: self.line.pos(key_at),
                node,
            });
            if self.separator(b'}', open)? {
                return Ok(entries);
            }
        }
    }

    /// Consumes `close` if it is next; fails when the line ends first.
    fn close(&mut self, close: u8, open: usize) -> Result<bool, YamlError> {
        match self.peek() {
            Some(byte) if byte == close => {
                self.at += 1;
                Ok(true)
            }
            None | Some(b'#') => Err(self.line.error(
                open,
                "this flow collection does not close on its line; write it on one line, or use \
                 one `key: value` or `- item` per line",
            )),
            Some(_) => Ok(false),
        }
    }

    /// After an item: `,` (more may follow) or the closing bracket (returns true).
    fn separator(&mut self, close: u8, open: usize) -> Result<bool, YamlError> {
        self.skip_spaces();
        if self.peek() == Some(b',') {
            self.at += 1;
            return Ok(false);
        }
        if self.close(close, open)? {
            return Ok(true);
        }
        Err(self.line.error(
            self.at,
            format!("expected ',' or '{}' after the item", close as char),
        ))
    }

    /// A plain scalar inside a flow collection: it ends at `,` `[` `]` `{` `}`, at a `:` that
    /// ends a key, or at a comment.
    fn plain(&mut self, start: usize) -> Result<&'a str, YamlError> {
        let all: &'a str = self.line.text;
        let rest = &all[start..];
        let first = rest.chars().next().unwrap_or(' ');
        if let Some(message) = unsupported_indicator(first) {
            return Err(self.line.error(start, message));
        }
        let bytes = rest.as_bytes();
        let mut end = 0;
        while end < bytes.len() {
            match bytes[end] {
                b',' | b'[' | b']' | b'{' | b'}' => break,
                b':' if matches!(
                    bytes.get(end + 1),
                    None | Some(b' ' | b'\t' | b',' | b']' | b'}')
                ) =>
                {
                    break
                }
                b'#' if end > 0 && matches!(bytes[end - 1], b' ' | b'\t') => break,
                _ => end += 1,
            }
        }
        let text = rest[..end].trim_end_matches([' ', '\t']);
        if text.is_empty() {
            return Err(self.line.error(
                start,
                "an empty item; write a value, or \"\" for an empty one",
            ));
        }
        self.at = start + text.len();
        Ok(text)
    }
}

/// A quoted scalar starting at `offset` (on the quote); returns its text and the offset just
/// past the closing quote.
fn quoted(line: &Line<'_>, offset: usize) -> Result<(String, usize), YamlError> {
    let text = line.text;
    let double = text[offset..].starts_with('"');
    let mut value = String::new();
    let mut chars = text[offset + 1..]
        .char_indices()
        .map(|(i, c)| (offset + 1 + i, c))
        .peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' if !double => {
                if chars.next_if(|&(_, next)| next == '\'').is_none() {
                    return Ok((value, at + 1));
                }
                value.push('\'');
            }
            '"' if double => return Ok((value, at + 1)),
            '\\' if double => value.push(escape(line, at, &mut chars)?),
            _ => value.push(c),
        }
    }
    Err(line.error(
        offset,
        "this quoted value has no closing quote (values cannot span lines)",
    ))
}

const UNKNOWN_ESCAPE: &str =
    "unknown escape in a double-quoted value; use \\\\ for a backslash, or single quotes";

/// The character a double-quoted escape stands for; `backslash` is the escape's offset.
fn escape(
    line: &Line<'_>,
    backslash: usize,
    chars: &mut impl Iterator<Item = (usize, char)>,
) -> Result<char, YamlError> {
    let bad = |message: &str| line.error(backslash, message);
    let Some((_, code)) = chars.next() else {
        return Err(bad(
            "a backslash at the end of the line (values cannot span lines)",
        ));
    };
    let hex_digits = match code {
        '0' => return Ok('\0'),
        'a' => return Ok('\x07'),
        'b' => return Ok('\x08'),
        't' | '\t' => return Ok('\t'),
        'n' => return Ok('\n'),
        'v' => return Ok('\x0b'),
        'f' => return Ok('\x0c'),
        'r' => return Ok('\r'),
        'e' => return Ok('\x1b'),
        ' ' | '"' | '/' | '\\' => return Ok(code),
        'N' => return Ok('\u{85}'),
        '_' => return Ok('\u{a0}'),
        'L' => return Ok('\u{2028}'),
        'P' => return Ok('\u{2029}'),
        'x' => 2,
        'u' => 4,
        'U' => 8,
        // The character is not quoted back: the value may be a secret.
        _ => return Err(bad(UNKNOWN_ESCAPE)),
    };
    let digits: String = chars.take(hex_digits).map(|(_, c)| c).collect();
    if digits.len() == hex_digits && digits.chars().all(|c| c.is_ascii_hexdigit()) {
        if let Some(decoded) = u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
        {
            return Ok(decoded);
        }
    }
    Err(bad(&format!(
        "\\{code} must be followed by {hex_digits} hex digits of a valid character"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Value {
        Value::Scalar(text.to_string())
    }

    /// The value at a dotted path, e.g. "server.socket_mode".
    fn at<'n>(root: &'n Node, path: &str) -> &'n Value {
        path.split('.').fold(&root.value, |value, key| match value {
            Value::Map(entries) => match entries.iter().find(|entry| entry.key == key) {
                Some(entry) => &entry.node.value,
                None => panic!("no key {key} in {path}"),
            },
            other => panic!("{path}: {other:?} is not a mapping"),
        })
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(tree) => panic!("accepted {text:?} as {tree:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn nested_mappings_with_comments_everywhere() {
        let text = "# heading\n\
                    server:   # trailing comment on a section\n\
                    \x20 socket_path: /run/x.sock\n\
                    \x20 # indented comment\n\
                    \n\
                    \x20 socket_mode: 0660\n\
                    \x20 max_stream_duration_ms: 300000  # 5 min\n\
                    \x20 # pprof_addr: localhost:6060\n\
                    backend:\n\
                    \x20   provider: openai\n\
                    \x20   openai:\n\
                    \x20     api_base: https://api.example.com/v1\n\
                    \x20   typing: {}\n\
                    metrics:\n\
                    \x20 listen_addr: 127.0.0.1:9090\n";
        let tree = parse(text).expect("parses");
        assert_eq!(at(&tree, "server.socket_path"), &scalar("/run/x.sock"));
        assert_eq!(at(&tree, "server.socket_mode"), &scalar("0660"));
        assert_eq!(
            at(&tree, "server.max_stream_duration_ms"),
            &scalar("300000")
        );
        assert_eq!(at(&tree, "backend.provider"), &scalar("openai"));
        assert_eq!(
            at(&tree, "backend.openai.api_base"),
            &scalar("https://api.example.com/v1")
        );
        assert_eq!(at(&tree, "backend.typing"), &Value::Map(Vec::new()));
        assert_eq!(at(&tree, "metrics.listen_addr"), &scalar("127.0.0.1:9090"));
        let Value::Map(server) = at(&tree, "server") else {
            panic!("server is a mapping")
        };
        assert_eq!(server.len(), 3, "the commented-out key is not a key");
        assert_eq!(server[1].key_pos, Pos { line: 6, col: 3 });
        assert_eq!(server[1].node.pos, Pos { line: 6, col: 16 });
    }

    #[test]
    fn plain_scalars_keep_inner_spaces_hashes_and_colons() {
        let tree = parse(
            "a: one two  three\nb: x#y\nc: http://h:1/p?q=1\nd: it's\ne: -5\nf: 1.5s\ng: 512 MiB\n",
        )
        .expect("parses");
        assert_eq!(at(&tree, "a"), &scalar("one two  three"));
        assert_eq!(at(&tree, "b"), &scalar("x#y"));
        assert_eq!(at(&tree, "c"), &scalar("http://h:1/p?q=1"));
        assert_eq!(at(&tree, "d"), &scalar("it's"));
        assert_eq!(at(&tree, "e"), &scalar("-5"));
        assert_eq!(at(&tree, "f"), &scalar("1.5s"));
        assert_eq!(at(&tree, "g"), &scalar("512 MiB"));
    }

    #[test]
    fn quoted_scalars() {
        let text = concat!(
            "single: 'it''s # not a comment: really'  # a comment\n",
            "double: \"tab\\there \\\"q\\\" \\\\ \\u00e9 \\x41 \\U0001F600 \\/\"\n",
            "empty: ''\n",
            "null_text: \"null\"\n",
            "'quoted key': 1\n",
            "\"other key\" : 2\n",
        );
        let tree = parse(text).expect("parses");
        assert_eq!(at(&tree, "single"), &scalar("it's # not a comment: really"));
        assert_eq!(at(&tree, "double"), &scalar("tab\there \"q\" \\ é A 😀 /"));
        assert_eq!(at(&tree, "empty"), &scalar(""));
        assert_eq!(at(&tree, "null_text"), &scalar("null"));
        assert_eq!(at(&tree, "quoted key"), &scalar("1"));
        assert_eq!(at(&tree, "other key"), &scalar("2"));
    }

    #[test]
    fn nulls_and_empty_collections() {
        let tree =
            parse("a:\nb: ~\nc: null\nd: {}\ne: { }\nf: []\ng: []  # none\nh:   # nothing\n")
                .expect("parses");
        assert_eq!(at(&tree, "a"), &Value::Null);
        assert_eq!(at(&tree, "b"), &Value::Null);
        assert_eq!(at(&tree, "c"), &Value::Null);
        assert_eq!(at(&tree, "d"), &Value::Map(Vec::new()));
        assert_eq!(at(&tree, "e"), &Value::Map(Vec::new()));
        assert_eq!(at(&tree, "f"), &Value::List(Vec::new()));
        assert_eq!(at(&tree, "g"), &Value::List(Vec::new()));
        assert_eq!(at(&tree, "h"), &Value::Null);
        assert_eq!(
            parse("# only comments\n\n").map(|node| node.value),
            Ok(Value::Null)
        );
        assert_eq!(parse("").map(|node| node.value), Ok(Value::Null));
    }

    #[test]
    fn block_lists_indented_or_level_with_their_key() {
        let tree = parse("a:\n  - one\n  - 'two'  # c\nb:\n- x\n-   y\nc: 1\n").expect("parses");
        let items = |value: &Value| match value {
            Value::List(nodes) => nodes
                .iter()
                .map(|node| node.value.clone())
                .collect::<Vec<_>>(),
            other => panic!("{other:?} is not a list"),
        };
        assert_eq!(items(at(&tree, "a")), [scalar("one"), scalar("two")]);
        assert_eq!(items(at(&tree, "b")), [scalar("x"), scalar("y")]);
        assert_eq!(at(&tree, "c"), &scalar("1"));
    }

    #[test]
    fn document_start_bom_and_crlf() {
        let tree = parse("\u{feff}--- # the only document\r\nkey: value\r\nother: 'x'\r\n")
            .expect("parses");
        assert_eq!(at(&tree, "key"), &scalar("value"));
        assert_eq!(at(&tree, "other"), &scalar("x"));
    }

    #[test]
    fn rejected_constructs_point_at_line_and_column() {
        let cases = [
            ("a:\n\tb: 1\n", "2:1: a tab is used for indentation; YAML allows only spaces there"),
            ("a:\n  \tb: 1\n", "2:3: a tab is used for indentation; YAML allows only spaces there"),
            ("a: &x 1\n", "1:4: anchors (&) are not supported; repeat the value instead"),
            ("a: 1\nb: *x\n", "2:4: aliases (*) are not supported; repeat the value instead"),
            ("a: !!str 1\n", "1:4: tags (!) are not supported; remove the tag"),
            (
                "a: |\n  text\n",
                "1:4: block scalars (| and >) are not supported; write the value on one line, quoted if needed",
            ),
            (
                "a: >-\n  text\n",
                "1:4: block scalars (| and >) are not supported; write the value on one line, quoted if needed",
            ),
            (
                "a: [1, 2\n",
                "1:4: this flow collection does not close on its line; write it on one line, or use one `key: value` or `- item` per line",
            ),
            (
                "a: {b: 1,\n  c: 2}\n",
                "1:4: this flow collection does not close on its line; write it on one line, or use one `key: value` or `- item` per line",
            ),
            (
                "a: [1, 2] # c [\n b: 1\n",
                "2:2: unexpected indentation (values cannot continue on the next line)",
            ),
            (
                "a: [1, 2 # comment]\n",
                "1:4: this flow collection does not close on its line; write it on one line, or use one `key: value` or `- item` per line",
            ),
            ("a: [1, 2] x\n", "1:10: unexpected text after the closing bracket"),
            ("a: [1, , 2]\n", "1:8: an empty item; write a value, or \"\" for an empty one"),
            ("a: [\"x\" y]\n", "1:9: expected ',' or ']' after the item"),
            ("a: {b 1}\n", "1:8: expected ':' after the key (write `{key: value, other: value}`)"),
            ("a: {b: 1, b: 2}\n", "1:11: duplicate key \"b\" in this mapping"),
            ("a: [&x 1]\n", "1:5: anchors (&) are not supported; repeat the value instead"),
            ("a: [1}\n", "1:6: expected ',' or ']' after the item"),
            ("{a: 1}\n", "1:1: a key cannot start with '[' or '{'; quote the key"),
            ("a: [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]\n", "1:20: flow collections are nested too deeply"),
            ("a: 1\nb: 2\na: 3\n", "3:1: duplicate key \"a\" (first set on line 1)"),
            (
                "a: 1\n---\nb: 2\n",
                "2:1: a second document (---) is not supported: one file holds one configuration",
            ),
            ("%YAML 1.2\n---\na: 1\n", "1:1: directives (%YAML, %TAG) are not supported; remove the line"),
            ("a: 1\n...\n", "2:1: the document end marker (...) is not supported; remove it"),
            ("--- a: 1\n", "1:5: content on the --- line is not supported; start it on the next line"),
            ("a: \"open\n", "1:4: this quoted value has no closing quote (values cannot span lines)"),
            ("a: 'it''s\n", "1:4: this quoted value has no closing quote (values cannot span lines)"),
            ("a: \"x\\q\"\n", "1:6: unknown escape in a double-quoted value; use \\\\ for a backslash, or single quotes"),
            ("a: \"\\u12\"\n", "1:5: \\u must be followed by 4 hex digits of a valid character"),
            ("a: \"\\uD800\"\n", "1:5: \\u must be followed by 4 hex digits of a valid character"),
            ("a: \"x\" y\n", "1:7: unexpected text after the closing quote"),
            ("a: 'x'#c\n", "1:7: unexpected text after the closing quote"),
            ("a: 1\n  b: 2\n", "2:3: unexpected indentation (values cannot continue on the next line)"),
            ("a: one\n  two\n", "2:3: unexpected indentation (values cannot continue on the next line)"),
            ("a:\n    b: 1\n  c: 2\n", "3:3: unexpected indentation (values cannot continue on the next line)"),
            ("  a: 1\nb: 2\n", "2:1: this line is indented less than the start of the document"),
            ("just text\n", "1:1: expected `key: value` (a key, a colon and a space, then the value)"),
            ("a:b\n", "1:1: expected `key: value` (a key, a colon and a space, then the value)"),
            ("a: b: c\n", "1:5: a value cannot contain ': ' unless it is quoted"),
            ("a: b:\n", "1:5: a value cannot contain ': ' unless it is quoted"),
            (": 1\n", "1:1: a key is missing before ':'"),
            ("'a' 1\n", "1:5: expected ':' after the quoted key"),
            ("? a\n: 1\n", "1:1: complex keys (?) are not supported"),
            ("a: ? b\n", "1:4: complex keys (?) are not supported"),
            ("a: @x\n", "1:4: '@' and '`' cannot start a plain value; quote the value"),
            ("&a b: 1\n", "1:1: anchors (&) are not supported; repeat the value instead"),
            ("a:\n  - b: 1\n", "2:5: lists of mappings are not supported; list items must be single values"),
            ("a:\n  - - 1\n", "2:5: nested lists are not supported"),
            ("a:\n  -\n", "2:3: an empty list item; write the value after the dash"),
            ("a:\n  - 1\n   - 2\n", "3:4: unexpected indentation (list items must be single values)"),
            (
                "a: - 1\n",
                "1:4: a list cannot start on the same line as its key; put each `- item` on its own line below it",
            ),
            ("a: 1\n- 2\n", "2:1: a list item where a `key: value` line was expected"),
        ];
        for (text, expected) in cases {
            assert_eq!(error(text), expected, "for {text:?}");
        }
    }

    #[test]
    fn flow_collections_on_one_line() {
        let tree = parse(concat!(
            "allowed: [langgraph, 'typing', \"mock\"]  # c\n",
            "empty: [ ]\n",
            "trailing: [a, b, ]\n",
            "profiles: {sales: {api_base: \"http://127.0.0.1:18002\", api_key: sales-key}, claude: {assistant_id: claude-agent, content_format: anthropic}}\n",
            "nested: [[1, 2], {k: ~}, x y]\n",
            "nulls: {a: , b: null, c:}\n",
            "urls: [http://h:1/p, a#b]\n",
            "list:\n  - [x]\n  - {k: v}\n",
        ))
        .expect("parses");
        assert_eq!(
            at(&tree, "allowed"),
            &Value::List(vec![
                Node {
                    pos: Pos { line: 1, col: 11 },
                    value: scalar("langgraph")
                },
                Node {
                    pos: Pos { line: 1, col: 22 },
                    value: scalar("typing")
                },
                Node {
                    pos: Pos { line: 1, col: 32 },
                    value: scalar("mock")
                },
            ])
        );
        assert_eq!(at(&tree, "empty"), &Value::List(Vec::new()));
        let Value::List(trailing) = at(&tree, "trailing") else {
            panic!("a list")
        };
        assert_eq!(trailing.len(), 2);
        assert_eq!(
            at(&tree, "profiles.sales.api_base"),
            &scalar("http://127.0.0.1:18002")
        );
        assert_eq!(at(&tree, "profiles.sales.api_key"), &scalar("sales-key"));
        assert_eq!(
            at(&tree, "profiles.claude.content_format"),
            &scalar("anthropic")
        );
        let Value::Map(profiles) = at(&tree, "profiles") else {
            panic!("a mapping")
        };
        assert_eq!(profiles[1].key_pos, Pos { line: 4, col: 77 });
        let Value::List(nested) = at(&tree, "nested") else {
            panic!("a list")
        };
        assert_eq!(
            nested[0].value,
            Value::List(vec![
                Node {
                    pos: Pos { line: 5, col: 11 },
                    value: scalar("1")
                },
                Node {
                    pos: Pos { line: 5, col: 14 },
                    value: scalar("2")
                },
            ])
        );
        assert_eq!(at(&tree, "nested").clone(), Value::List(nested.clone()));
        assert_eq!(nested[2].value, scalar("x y"));
        assert_eq!(at(&tree, "nulls.a"), &Value::Null);
        assert_eq!(at(&tree, "nulls.b"), &Value::Null);
        assert_eq!(at(&tree, "nulls.c"), &Value::Null);
        let Value::List(urls) = at(&tree, "urls") else {
            panic!("a list")
        };
        assert_eq!(urls[0].value, scalar("http://h:1/p"));
        assert_eq!(urls[1].value, scalar("a#b"));
        let Value::List(list) = at(&tree, "list") else {
            panic!("a list")
        };
        assert!(matches!(list[0].value, Value::List(_)));
        assert!(matches!(list[1].value, Value::Map(_)));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            error("é: \"x\\q\"\n"),
            "1:6: unknown escape in a double-quoted value; use \\\\ for a backslash, or single quotes"
        );
    }

    #[test]
    fn question_mark_inside_a_plain_value_is_text() {
        let tree = parse("a: ?b\nb: what?\n").expect("parses");
        assert_eq!(at(&tree, "a"), &scalar("?b"));
        assert_eq!(at(&tree, "b"), &scalar("what?"));
    }
}
