use super::*;
use crate::handoff::parse_handoff_data;
use crate::http::{error_response_with_headers, write_success_head, ErrorStatus};

/// The success head without its blank line (SPEC A.1's `H0`).
const H0: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n";

/// The filter's result for the handoff `{"prompt":"hi","response_headers":<value>}`, the way the
/// connection gets it.
fn filtered(value: &str) -> ResponseHeaders {
    let payload = format!(r#"{{"prompt":"hi","response_headers":{value}}}"#);
    let data = parse_handoff_data(payload.as_bytes()).unwrap();
    assert_eq!(data.prompt, "hi");
    filter_response_headers(data.response_headers.as_ref())
}

fn head(value: &str) -> String {
    let mut out = Vec::new();
    write_success_head(&mut out, &filtered(value).headers);
    String::from_utf8(out).unwrap()
}

fn drops(value: &str) -> Vec<(String, &'static str)> {
    filtered(value)
        .dropped
        .into_iter()
        .map(|(name, reason)| (name, reason.as_str()))
        .collect()
}

fn named(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(n, r)| (n.to_string(), *r)).collect()
}

#[test]
fn rh1_one_header() {
    assert_eq!(
        head(r#"{"X-Request-Id":"abc-123"}"#),
        format!("{H0}X-Request-Id: abc-123\r\n\r\n")
    );
    assert_eq!(
        filtered(r#"{"X-Request-Id":"abc-123"}"#).dropped_field(),
        None
    );
}

#[test]
fn rh2_blocked_names() {
    let value = r#"{"Content-Type":"text/html","CONTENT-LENGTH":"1","content-encoding":"gzip","Transfer-Encoding":"chunked","Cache-Control":"max-age=1","Connection":"keep-alive","X-Accel-Buffering":"yes","X-Ok":"v"}"#;
    assert_eq!(head(value), format!("{H0}X-Ok: v\r\n\r\n"));
    assert_eq!(
        filtered(value).dropped_field().as_deref(),
        Some(
            "blocked:Content-Type, blocked:CONTENT-LENGTH, blocked:content-encoding, \
             blocked:Transfer-Encoding, blocked:Cache-Control, blocked:Connection, \
             blocked:X-Accel-Buffering"
        )
    );
}

#[test]
fn rh3_bad_names_and_values() {
    let value = r#"{"X Bad":"v","X:C":"v","":"v","X-\u00e9":"v","Content-Type ":"v","X-Ctl":"a\u0001b","X-Nl":"a\nb","X-Del":"a\u007fb","X-Good":"g"}"#;
    assert_eq!(head(value), format!("{H0}X-Good: g\r\n\r\n"));
    assert_eq!(
        drops(value),
        named(&[
            ("X Bad", "bad_name"),
            ("X:C", "bad_name"),
            ("", "bad_name"),
            ("X-\u{e9}", "bad_name"),
            ("Content-Type ", "bad_name"),
            ("X-Ctl", "bad_value"),
            ("X-Nl", "bad_value"),
            ("X-Del", "bad_value"),
        ])
    );
    assert_eq!(
        filtered(r#"{"X Bad":"v","X-Good":"g"}"#)
            .dropped_field()
            .as_deref(),
        Some("bad_name:X Bad")
    );
}

#[test]
fn rh4_tabs_empty_trimmed_and_utf8_values() {
    assert_eq!(
        head(r#"{"X-Tab":"a\tb","X-Empty":"","X-Sp":"  a ","X-Utf8":"caf\u00e9"}"#).as_bytes(),
        [
            H0.as_bytes(),
            b"X-Tab: a\tb\r\nX-Empty: \r\nX-Sp: a\r\nX-Utf8: caf\xc3\xa9\r\n\r\n"
        ]
        .concat()
    );
    // Only SP and HTAB are trimmed, from both ends.
    assert_eq!(
        head("{\"X-T\":\"\\t \\u00a0x\\u00a0 \\t\"}"),
        format!("{H0}X-T: \u{a0}x\u{a0}\r\n\r\n")
    );
}

#[test]
fn rh5_a_later_name_replaces_an_earlier_one_at_its_own_position() {
    let value = r#"{"X-A":"1","X-B":"2","x-a":"3"}"#;
    assert_eq!(head(value), format!("{H0}X-B: 2\r\nx-a: 3\r\n\r\n"));
    assert_eq!(drops(value), named(&[("X-A", "duplicate")]));
}

#[test]
fn rh6_numbers_and_booleans_as_written_other_types_dropped() {
    let value = r#"{"X-Num":5,"X-Float":1.50,"X-Bool":true,"X-Null":null,"X-Obj":{},"X-Arr":[1]}"#;
    assert_eq!(
        head(value),
        format!("{H0}X-Num: 5\r\nX-Float: 1.50\r\nX-Bool: true\r\n\r\n")
    );
    assert_eq!(
        drops(value),
        named(&[
            ("X-Null", "bad_type"),
            ("X-Obj", "bad_type"),
            ("X-Arr", "bad_type")
        ])
    );
    assert_eq!(
        head(r#"{"X-Exp":-2.5E+3,"X-F":false}"#),
        format!("{H0}X-Exp: -2.5E+3\r\nX-F: false\r\n\r\n")
    );
}

#[test]
fn rh7_a_value_that_is_not_an_object_gives_no_headers() {
    for (value, warning) in [
        (r#""X-A: 1""#, Some("a string")),
        ("42", Some("a number")),
        ("null", None),
        ("[]", None),
    ] {
        let result = filtered(value);
        assert_eq!(head(value), format!("{H0}\r\n"), "{value}");
        assert_eq!(head(value).len(), 119);
        assert_eq!(result.not_an_object, warning, "{value}");
        assert!(result.dropped.is_empty());
    }
    assert_eq!(
        filtered("42").not_an_object_warning().as_deref(),
        Some("response_headers must be an object, not a number; no custom headers are sent")
    );
    assert_eq!(filtered("[1]").not_an_object, Some("an array"));
    assert_eq!(filtered("true").not_an_object, Some("a boolean"));
    assert_eq!(filtered("{}").not_an_object_warning(), None);
    // Absent altogether.
    assert_eq!(filter_response_headers(None), ResponseHeaders::default());
}

#[test]
fn rh8_at_most_32_headers() {
    let members: Vec<String> = (1..=40).map(|i| format!("\"X-H{i:02}\":\"v\"")).collect();
    let value = format!("{{{}}}", members.join(","));
    let lines: String = (1..=32).map(|i| format!("X-H{i:02}: v\r\n")).collect();
    assert_eq!(head(&value), format!("{H0}{lines}\r\n"));
    let dropped = drops(&value);
    assert_eq!(dropped.len(), 8);
    assert!(dropped.iter().all(|(_, reason)| *reason == "limit"));
    assert_eq!(dropped[0].0, "X-H33");
    // The warning lists all eight.
    assert_eq!(
        filtered(&value)
            .dropped_field()
            .unwrap()
            .matches("limit:")
            .count(),
        8
    );
}

#[test]
fn rh9_at_most_8192_bytes_and_nothing_after_the_first_over() {
    let value = format!(r#"{{"X-Big":"{}","X-After":"b"}}"#, "a".repeat(8200));
    assert_eq!(head(&value), format!("{H0}\r\n"));
    assert_eq!(
        drops(&value),
        named(&[("X-Big", "limit"), ("X-After", "limit")])
    );

    // Exactly 8192 bytes of lines fit; one more byte does not, nor does anything after it.
    let exact = format!(r#"{{"X-A":"{}","X-B":"b"}}"#, "a".repeat(8192 - 7 - 8));
    let result = filtered(&exact);
    assert_eq!(result.headers.line_bytes(), 8192);
    assert_eq!(result.headers.len(), 2);
    let over = format!(
        r#"{{"X-A":"{}","X-B":"bb","X-C":"c"}}"#,
        "a".repeat(8192 - 7 - 8)
    );
    assert_eq!(drops(&over), named(&[("X-B", "limit"), ("X-C", "limit")]));
}

#[test]
fn rh12_error_responses_carry_the_headers_after_retry_after_without_a_second_one() {
    let result = filtered(r#"{"Retry-After":"9","X-Id":"r"}"#);
    let response = error_response_with_headers(
        ErrorStatus::ServiceUnavailable,
        "server at capacity; retry shortly",
        Some("1"),
        &result.headers,
    );
    let body = "{\"error\":\"server at capacity; retry shortly\"}\n";
    assert_eq!(
        String::from_utf8(response).unwrap(),
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\nRetry-After: 1\r\nX-Id: r\r\n\r\n{body}",
            body.len()
        )
    );
    // On the success head a Retry-After contradicts nothing.
    let mut out = Vec::new();
    write_success_head(&mut out, &result.headers);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{H0}Retry-After: 9\r\nX-Id: r\r\n\r\n")
    );
}

#[test]
fn duplicates_are_resolved_before_the_limits() {
    // 40 members of one name: one header, the last, and 39 duplicates.
    let members: Vec<String> = (1..=40).map(|i| format!("\"X-Same\":\"{i}\"")).collect();
    let value = format!("{{{}}}", members.join(","));
    assert_eq!(head(&value), format!("{H0}X-Same: 40\r\n\r\n"));
    let dropped = drops(&value);
    assert_eq!(dropped.len(), 39);
    assert!(dropped.iter().all(|(_, reason)| *reason == "duplicate"));
}

#[test]
fn an_unusable_later_member_does_not_replace_a_usable_one() {
    let value = r#"{"X-A":"1","x-a":null,"X-A":"a\nb"}"#;
    assert_eq!(head(value), format!("{H0}X-A: 1\r\n\r\n"));
    assert_eq!(
        drops(value),
        named(&[("x-a", "bad_type"), ("X-A", "bad_value")])
    );
}

#[test]
fn drops_are_listed_in_document_order() {
    let value = r#"{"X-A":"1","Connection":"x","x-a":"2","X B":"3"}"#;
    assert_eq!(
        filtered(value).dropped_field().as_deref(),
        Some("duplicate:X-A, blocked:Connection, bad_name:X B")
    );
}

#[test]
fn the_warning_field_is_bounded() {
    let long = "N".repeat(100);
    let value = format!(r#"{{"{long} x":"v"}}"#);
    assert_eq!(
        filtered(&value).dropped_field(),
        Some(format!("bad_name:{}...", "N".repeat(64)))
    );
    let members: Vec<String> = (0..50).map(|i| format!("\"X {i}\":\"v\"")).collect();
    let field = filtered(&format!("{{{}}}", members.join(",")))
        .dropped_field()
        .unwrap();
    assert_eq!(field.matches("bad_name:").count(), 40);
    assert!(field.ends_with(", and 10 more"), "{field}");
}
