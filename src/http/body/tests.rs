use super::*;
use crate::splits::for_each_split;

fn head(chunked: bool, content_length: Option<u64>) -> Head {
    Head {
        status: 200,
        reason: "OK".into(),
        content_length,
        chunked,
        connection_close: false,
        retry_after: None,
        content_type: None,
        content_encoding: None,
    }
}

fn chunked() -> Head {
    head(true, None)
}

/// What a body made of `pieces` decodes to: payload, bytes used, complete, first error.
struct Decoded {
    payload: Vec<u8>,
    used: usize,
    complete: bool,
    error: Option<BodyError>,
}

fn decode(head: &Head, pieces: &[&[u8]]) -> Decoded {
    let mut body = Body::new(head);
    let mut payload = Vec::new();
    let mut used = 0;
    for piece in pieces {
        match body.feed(piece, &mut payload) {
            Ok(n) => used += n,
            Err(error) => {
                return Decoded {
                    payload,
                    used,
                    complete: false,
                    error: Some(error),
                }
            }
        }
    }
    Decoded {
        payload,
        used,
        complete: body.is_complete(),
        error: None,
    }
}

/// `input` decodes to `payload` and completes, however it is cut; `rest` bytes are left over.
fn assert_body(head: &Head, input: &[u8], payload: &[u8], rest: usize) {
    for_each_split(input, |pieces| {
        let decoded = decode(head, pieces);
        assert_eq!(decoded.error, None, "{pieces:?}");
        assert_eq!(decoded.payload, payload, "{pieces:?}");
        assert!(decoded.complete, "{pieces:?}");
        assert_eq!(decoded.used, input.len() - rest, "{pieces:?}");
    });
}

/// `input` fails with `error` however it is cut.
fn assert_error(head: &Head, input: &[u8], error: BodyError) {
    for_each_split(input, |pieces| {
        assert_eq!(
            decode(head, pieces).error,
            Some(error.clone()),
            "{pieces:?}"
        );
    });
}

#[test]
fn chunks_with_extensions_and_trailers() {
    let input = b"5\r\nhello\r\n6;name=\"v a\" ; x\r\n world\r\nA \t;y\r\n, chunked!\r\n\
        0;last\r\nX-Trailer: a\r\nX-Other: b\r\n\r\n";
    assert_body(&chunked(), input, b"hello world, chunked!", 0);
}

#[test]
fn bytes_after_the_last_chunk_are_not_taken() {
    let input = b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_body(&chunked(), input, b"abc", b"HTTP/1.1 200 OK\r\n".len());
}

#[test]
fn empty_last_chunk_alone_and_uppercase_hex() {
    assert_body(&chunked(), b"0\r\n\r\n", b"", 0);
    assert_body(&chunked(), b"0000\r\n\r\n", b"", 0);
    let mut big = b"1F\r\n".to_vec();
    big.extend_from_slice(&[b'x'; 31]);
    big.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_body(&chunked(), &big, &[b'x'; 31], 0);
}

#[test]
fn event_per_chunk_like_an_sse_server() {
    let events = [
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: [DONE]\n\n",
    ];
    let mut input = Vec::new();
    for event in events {
        input.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    input.extend_from_slice(b"0\r\n\r\n");
    assert_body(&chunked(), &input, events.concat().as_bytes(), 0);
}

#[test]
fn partial_chunk_data_streams_out_at_once() {
    let mut body = Body::new(&chunked());
    let mut out = Vec::new();
    assert_eq!(body.feed(b"400\r\nhel", &mut out), Ok(8));
    assert_eq!(out, b"hel");
    assert!(!body.is_complete());
    assert_eq!(body.on_eof(), Err(BodyError::Cut));
}

#[test]
fn bad_chunk_sizes() {
    assert_error(&chunked(), b"zz\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b"\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b";ext\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b"5 5\r\nhello\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b"-5\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b"0x5\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b"5;a\x01b\r\n", BodyError::BadChunkSize);
    // A bare LF is not a line end in the framing.
    assert_error(&chunked(), b"5\nhello\r\n", BodyError::BadChunkSize);
    assert_error(&chunked(), b"5\r\rhello\r\n", BodyError::BadChunkSize);
}

#[test]
fn chunk_size_overflow() {
    assert_error(
        &chunked(),
        b"10000000000000000\r\n",
        BodyError::ChunkSizeOverflow,
    );
    // The largest 64-bit size is accepted; the data just never comes.
    let mut body = Body::new(&chunked());
    assert_eq!(
        body.feed(b"ffffffffffffffff\r\nab", &mut Vec::new()),
        Ok(20)
    );
    assert_eq!(body.on_eof(), Err(BodyError::Cut));
}

#[test]
fn size_line_limit() {
    let mut line = b"5;".to_vec();
    line.resize(MAX_SIZE_LINE, b'a');
    line.extend_from_slice(b"\r\n");
    // The CR is byte MAX_SIZE_LINE + 1.
    let mut body = Body::new(&chunked());
    assert_eq!(
        body.feed(&line, &mut Vec::new()),
        Err(BodyError::ChunkSizeLineTooLong)
    );
    let mut fits = b"5;".to_vec();
    fits.resize(MAX_SIZE_LINE - 1, b'a');
    fits.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert_body(&chunked(), &fits, b"hello", 0);
}

#[test]
fn data_must_end_with_crlf() {
    assert_error(&chunked(), b"5\r\nhelloX\r\n", BodyError::MissingCrlf);
    assert_error(&chunked(), b"5\r\nhello\n0\r\n\r\n", BodyError::MissingCrlf);
    assert_error(&chunked(), b"5\r\nhello\rX", BodyError::MissingCrlf);
}

#[test]
fn trailer_rules() {
    assert_error(&chunked(), b"0\r\nX: y\n\r\n", BodyError::BadTrailers);
    assert_error(&chunked(), b"0\r\n\rX", BodyError::BadTrailers);
    let mut large = b"0\r\nX: ".to_vec();
    large.resize(MAX_TRAILERS + 10, b'a');
    let mut body = Body::new(&chunked());
    assert_eq!(
        body.feed(&large, &mut Vec::new()),
        Err(BodyError::TrailersTooLarge)
    );
}

#[test]
fn content_length_body() {
    assert_body(&head(false, Some(5)), b"helloEXTRA", b"hello", 5);
    assert_body(&head(false, Some(0)), b"", b"", 0);
    let mut body = Body::new(&head(false, Some(5)));
    let mut out = Vec::new();
    assert_eq!(body.feed(b"hel", &mut out), Ok(3));
    assert_eq!(body.on_eof(), Err(BodyError::Cut));
}

#[test]
fn close_delimited_body() {
    for_each_split(b"data: a\n\ndata: b\n\n", |pieces| {
        let decoded = decode(&head(false, None), pieces);
        assert_eq!(decoded.payload, b"data: a\n\ndata: b\n\n");
        assert!(!decoded.complete);
    });
    let mut body = Body::new(&head(false, None));
    assert_eq!(body.on_eof(), Ok(()));
    assert!(body.is_complete());
}

#[test]
fn eof_rules_for_chunked() {
    for cut in [
        &b""[..],
        b"5",
        b"5\r",
        b"5\r\nhe",
        b"5\r\nhello\r\n",
        b"0\r\n",
        b"0\r\nX: y\r\n",
    ] {
        let mut body = Body::new(&chunked());
        body.feed(cut, &mut Vec::new()).unwrap();
        assert_eq!(body.on_eof(), Err(BodyError::Cut), "{cut:?}");
    }
    let mut body = Body::new(&chunked());
    body.feed(b"0\r\n\r\n", &mut Vec::new()).unwrap();
    assert_eq!(body.on_eof(), Ok(()));
}

#[test]
fn statuses_without_a_body() {
    let mut no_content = head(true, None);
    no_content.status = 204;
    assert!(Body::new(&no_content).is_complete());
    let mut not_modified = head(false, Some(10));
    not_modified.status = 304;
    assert!(Body::new(&not_modified).is_complete());
}
