//! The openai backend's event translator, through the relay (see `relay` for what is checked).

use streaming_daemon::backends::openai;

pub fn check(data: &[u8]) {
    super::relay::check(data, &openai::translator);
}
