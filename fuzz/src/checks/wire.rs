//! Helpers the checks share: how one input is cut into reads, what a response the daemon wrote
//! must look like, what a request it built must look like, and SSE items kept past their
//! parser's callback.

use streaming_daemon::sse::SseItem;

/// Inputs up to this size are also fed one byte per read; longer ones only in pieces, which
/// keeps a target fast enough to run millions of times (the pieces move with every mutation).
const BYTEWISE_MAX: usize = 64;

/// FNV-1a: fixed and dependency-free, so the cut points a check derives from an input are the
/// same in the fuzzer and in the replay test.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Up to `count` distinct positions in `0..=len`, ascending, derived from `data` (which need not
/// be the `len` bytes cut: a check may cut the body of an input it hashes whole).
pub fn cut_points(data: &[u8], len: usize, count: usize) -> Vec<usize> {
    let mut hash = fnv(data);
    let mut points: Vec<usize> = (0..count)
        .map(|_| {
            hash = hash.rotate_left(17).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d;
            usize::try_from(hash % (len as u64 + 1)).unwrap_or(0)
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    points
}

/// Ways to cut `data` into consecutive reads, to compare with reading it whole: every byte on
/// its own (up to [`BYTEWISE_MAX`]), cuts at 3 points derived from the bytes with an empty
/// read before, between and after the pieces, and cuts at 16 such points.
pub fn splits(data: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut ways = Vec::new();
    if data.len() <= BYTEWISE_MAX {
        ways.push(data.chunks(1).collect());
    }
    let mut with_empty: Vec<&[u8]> = vec![&[]];
    for piece in cut(data, &cut_points(data, data.len(), 3)) {
        with_empty.push(piece);
        with_empty.push(&[]);
    }
    ways.push(with_empty);
    ways.push(cut(data, &cut_points(data, data.len(), 16)));
    ways
}

/// `data` cut at `points` (ascending, within it).
fn cut<'a>(data: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for &point in points {
        pieces.push(&data[start..point]);
        start = point;
    }
    pieces.push(&data[start..]);
    pieces
}

/// The lengths of `pieces`, for a failure message.
pub fn lengths(pieces: &[&[u8]]) -> Vec<usize> {
    pieces.iter().map(|piece| piece.len()).collect()
}

/// The most an incremental SSE parser may hold for `max_line`: its partial line, a pending
/// event's name and its data are each at most `max_line` bytes long, and a `Vec`'s capacity
/// may be up to twice its length (it doubles as it grows), eight bytes at the least.
pub fn sse_held_bound(max_line: usize) -> usize {
    3 * (2 * max_line).max(8)
}

/// An SSE item kept past the parser's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Event { name: String, data: String },
    Comment(String),
}

impl From<SseItem<'_>> for Item {
    fn from(item: SseItem<'_>) -> Item {
        match item {
            SseItem::Event { name, data } => Item::Event {
                name: name.to_string(),
                data: data.to_string(),
            },
            SseItem::Comment(text) => Item::Comment(text.to_string()),
        }
    }
}

/// A response the daemon wrote, taken apart.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    /// Header names lowercased, values as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: &'a [u8],
}

impl Response<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_slice())
    }
}

/// `bytes` must be one complete HTTP/1.1 response that says `Connection: close` and whose
/// `Content-Length` is its body's length (for a reply to `HEAD`, `head_only`, the length of the
/// body it leaves out, and no body). Panics otherwise.
pub fn complete_response(bytes: &[u8], head_only: bool) -> Response<'_> {
    // Room for an error response's own headers and 32 custom ones.
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!(
            "a response we wrote does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    assert_eq!(response.version, Some(1), "responses are HTTP/1.1");
    let parsed = Response {
        status: response.code.unwrap_or(0),
        headers: response
            .headers
            .iter()
            .map(|header| (header.name.to_ascii_lowercase(), header.value.to_vec()))
            .collect(),
        body: &bytes[len..],
    };
    let length: usize = parsed
        .header("content-length")
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no usable Content-Length: {parsed:?}"));
    if head_only {
        assert!(parsed.body.is_empty(), "a HEAD reply has no body");
    } else {
        assert_eq!(length, parsed.body.len(), "Content-Length frames the body");
    }
    assert_eq!(
        parsed.header("connection"),
        Some(&b"close"[..]),
        "every response we write closes"
    );
    parsed
}

/// `body` must be `{"error":"<text>"}` (and a line end): returns the text.
pub fn error_json(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|error| panic!("error body is not JSON ({error}): {body:?}"));
    let object = value.as_object().expect("the error body is an object");
    assert_eq!(object.len(), 1, "only `error`: {object:?}");
    object
        .get("error")
        .and_then(serde_json::Value::as_str)
        .expect("`error` is a string")
        .to_string()
}

/// `request` must be one complete HTTP/1.1 `POST` to a path, whose `Content-Length` frames a
/// body that is a JSON object. Returns the head's length.
///
/// The body is checked against JSON's grammar, not decoded: a client's `langgraph_input` is
/// forwarded as it was written, and the grammar allows an escaped lone surrogate (`"\ud83d"`,
/// which Python's `json` reads), while serde_json's `Value` refuses to decode one.
pub fn json_post(request: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(request) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!(
            "a request we built does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(request)
        ),
    };
    assert_eq!(parsed.method, Some("POST"));
    assert!(parsed.path.is_some_and(|path| path.starts_with('/')));
    let body = &request[len..];
    let length = parsed
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"))
        .and_then(|header| std::str::from_utf8(header.value).ok())
        .and_then(|value| value.parse::<usize>().ok());
    assert_eq!(length, Some(body.len()), "Content-Length frames the body");
    match serde_json::from_slice::<Box<serde_json::value::RawValue>>(body) {
        Ok(raw) => assert!(raw.get().starts_with('{'), "not an object: {}", raw.get()),
        Err(error) => panic!(
            "the body is not JSON ({error}): {}",
            String::from_utf8_lossy(body)
        ),
    }
    len
}
