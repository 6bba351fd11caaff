//! The langgraph backend's event translator in each stream mode it tells apart, and its
//! `output: raw`, through the relay (see `relay` for what is checked).

use streaming_daemon::backends::langgraph::{LangGraphTranslator, StreamMode};
use streaming_daemon::backends::upstream::Translator;

const MODES: [StreamMode; 3] = [
    StreamMode::MessagesTuple,
    StreamMode::Messages,
    StreamMode::Other,
];

pub fn check(data: &[u8]) {
    for mode in MODES {
        let translator =
            move || -> Box<dyn Translator> { Box::new(LangGraphTranslator::new(mode)) };
        super::relay::check(data, &translator);
    }
    super::relay::check_raw(data);
}
