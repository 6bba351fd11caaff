//! `metrics::scrape::parse_request` on what a client of the metrics port sends, and the
//! response the daemon then writes.
//!
//! - A complete head is at most `MAX_HEAD` bytes, ends where it says, and every shorter prefix
//!   of it is still incomplete; `Incomplete` only under `MAX_HEAD`.
//! - Every parse but `Incomplete` has a reply, and every reply is a complete response that
//!   closes, measured by its `Content-Length` (a `HEAD` reply without its body).

use streaming_daemon::metrics::scrape::{
    parse_request, respond, Reply, ScrapeParse, Snapshot, MAX_HEAD,
};
use streaming_daemon::metrics::{Gauges, Metrics};

use super::wire::{complete_response, cut_points};

/// Prefixes this short or shorter are all tried; longer ones at a few points.
const EVERY_PREFIX_UP_TO: usize = 256;

pub fn check(data: &[u8]) {
    let result = parse_request(data);
    match result {
        ScrapeParse::Incomplete => assert!(data.len() < MAX_HEAD, "incomplete at the limit"),
        ScrapeParse::Complete { head_len, .. } => {
            assert!(head_len <= data.len() && head_len <= MAX_HEAD);
            assert_eq!(parse_request(&data[..head_len]), result);
            let prefixes: Vec<usize> = if head_len <= EVERY_PREFIX_UP_TO {
                (0..head_len).collect()
            } else {
                let mut some = cut_points(data, head_len - 1, 4);
                some.push(head_len - 1);
                some
            };
            for end in prefixes {
                assert_eq!(
                    parse_request(&data[..end]),
                    ScrapeParse::Incomplete,
                    "a prefix of {end} bytes of a {head_len}-byte head"
                );
            }
        }
        ScrapeParse::BadRequest | ScrapeParse::TooLarge => {}
    }

    let Some(reply) = result.reply() else {
        assert_eq!(result, ScrapeParse::Incomplete);
        return;
    };
    let metrics = Metrics::new();
    let mut out = Vec::new();
    respond(
        reply,
        Snapshot {
            metrics: &[&metrics],
            gauges: Gauges::default(),
            process: None,
        },
        &mut out,
    );
    let head_only = matches!(
        reply,
        Reply::Metrics { head_only: true } | Reply::Healthz { head_only: true }
    );
    let response = complete_response(&out, head_only);
    let status = match reply {
        Reply::Metrics { .. } | Reply::Healthz { .. } => 200,
        Reply::NotFound => 404,
        Reply::MethodNotAllowed => 405,
        Reply::BadRequest => 400,
        Reply::HeadTooLarge => 431,
    };
    assert_eq!(response.status, status);
}
