//! The configuration file: its YAML tree applied key by key over what is already set, so a file
//! overrides only the keys it names (the Go daemon reset every missing key to zero).
//!
//! Unknown keys, values of the wrong shape and invalid values are errors naming the file, line,
//! column and dotted key, with a suggestion when a known key is close.

use std::path::Path;

use super::error::closest;
use super::profile::{self, LangGraphProfileSpec, PROFILE_KEYS};
use super::setting::{self, ListSetter, Setter};
use super::yaml::{self, Entry, Node, Pos};
use super::{Config, ConfigError};
use crate::sys::file::read_bounded;

/// The most a configuration file may hold. Real ones are a few KiB; the bound keeps a path to
/// `/dev/zero` or to a huge file from exhausting memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// How a key's YAML value is read.
#[derive(Clone, Copy)]
pub enum Apply {
    /// One value, as text.
    Value(Setter),
    /// A list of values (block or flow), or nothing for an empty list.
    List(ListSetter),
    /// `backend.langgraph.profiles`: a mapping of profile names, each a mapping of
    /// `profile::PROFILE_KEYS`.
    Profiles,
}

use Apply::{List, Profiles, Value};

/// Every key a file may set, by dotted path. Sections are the prefixes of these paths.
pub const KEYS: &[(&str, Apply)] = &[
    ("server.socket_path", Value(setting::socket_path)),
    ("server.socket_mode", Value(setting::socket_mode)),
    ("server.socket_type", Value(setting::socket_type)),
    ("server.max_connections", Value(setting::max_connections)),
    (
        "server.max_stream_duration_ms",
        Value(setting::max_stream_duration_ms),
    ),
    (
        "server.max_handoff_bytes",
        Value(setting::max_handoff_bytes),
    ),
    (
        "server.handoff_timeout_ms",
        Value(setting::handoff_timeout_ms),
    ),
    ("server.write_timeout_ms", Value(setting::write_timeout_ms)),
    (
        "server.shutdown_timeout_ms",
        Value(setting::shutdown_timeout_ms),
    ),
    ("server.mem_limit", Value(setting::mem_limit)),
    ("server.pprof_addr", Value(setting::pprof_addr)),
    ("server.gc_percent", Value(setting::gc_percent)),
    ("server.data_dir", Value(setting::data_dir)),
    (
        "server.max_attachment_bytes",
        Value(setting::max_attachment_bytes),
    ),
    ("server.data_max_age_ms", Value(setting::data_max_age_ms)),
    ("server.workers", Value(setting::workers)),
    ("server.resume_window_ms", Value(setting::resume_window_ms)),
    (
        "server.resume_buffer_bytes",
        Value(setting::resume_buffer_bytes),
    ),
    ("backend.provider", Value(setting::provider)),
    ("backend.allowed", List(setting::allowed)),
    ("backend.default_model", Value(setting::default_model)),
    ("backend.openai.api_key", Value(setting::openai_api_key)),
    ("backend.openai.api_base", Value(setting::openai_api_base)),
    (
        "backend.openai.api_socket",
        Value(setting::openai_api_socket),
    ),
    (
        "backend.openai.http2_enabled",
        Value(setting::openai_http2_enabled),
    ),
    (
        "backend.openai.insecure_ssl",
        Value(setting::openai_insecure_ssl),
    ),
    ("backend.openai.ca_file", Value(setting::openai_ca_file)),
    (
        "backend.langgraph.api_key",
        Value(setting::langgraph_api_key),
    ),
    (
        "backend.langgraph.api_base",
        Value(setting::langgraph_api_base),
    ),
    (
        "backend.langgraph.api_socket",
        Value(setting::langgraph_api_socket),
    ),
    (
        "backend.langgraph.assistant_id",
        Value(setting::langgraph_assistant_id),
    ),
    (
        "backend.langgraph.stream_mode",
        Value(setting::langgraph_stream_mode),
    ),
    (
        "backend.langgraph.http2_enabled",
        Value(setting::langgraph_http2_enabled),
    ),
    (
        "backend.langgraph.insecure_ssl",
        Value(setting::langgraph_insecure_ssl),
    ),
    (
        "backend.langgraph.ca_file",
        Value(setting::langgraph_ca_file),
    ),
    (
        "backend.langgraph.content_format",
        Value(setting::langgraph_content_format),
    ),
    ("backend.langgraph.output", Value(setting::langgraph_output)),
    ("backend.langgraph.profiles", Profiles),
    (
        "backend.mock.message_delay_ms",
        Value(setting::message_delay_ms),
    ),
    ("backend.typing.fortune_path", Value(setting::fortune_path)),
    ("backend.typing.use_api", Value(setting::typing_use_api)),
    (
        "backend.typing.default_model",
        Value(setting::typing_default_model),
    ),
    (
        "backend.upstream.connect_timeout_ms",
        Value(setting::connect_timeout_ms),
    ),
    (
        "backend.upstream.response_header_timeout_ms",
        Value(setting::response_header_timeout_ms),
    ),
    (
        "backend.upstream.idle_gap_timeout_ms",
        Value(setting::idle_gap_timeout_ms),
    ),
    (
        "backend.upstream.pool_idle_timeout_ms",
        Value(setting::pool_idle_timeout_ms),
    ),
    (
        "backend.upstream.pool_max_idle_per_origin",
        Value(setting::pool_max_idle_per_origin),
    ),
    (
        "backend.upstream.sse_max_line_bytes",
        Value(setting::sse_max_line_bytes),
    ),
    ("metrics.enabled", Value(setting::metrics_enabled)),
    ("metrics.listen_addr", Value(setting::metrics_listen_addr)),
    ("logging.level", Value(setting::log_level)),
    ("logging.format", Value(setting::log_format)),
];

/// Reads `path` and applies it over `config`.
pub fn apply_file(config: &mut Config, path: &Path) -> Result<(), ConfigError> {
    let refused = |reason: String| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_bounded(path, MAX_FILE_BYTES).map_err(|error| refused(error.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| refused("it is not UTF-8 text, so it cannot be YAML".to_string()))?;
    apply_text(config, &path.display().to_string(), &text)
}

/// Applies a file's `text` over `config`; `file` names it in errors.
pub fn apply_text(config: &mut Config, file: &str, text: &str) -> Result<(), ConfigError> {
    let root = yaml::parse(text).map_err(|error| ConfigError::Syntax {
        file: file.to_string(),
        line: error.pos.line,
        col: error.pos.col,
        message: error.message,
    })?;
    let mut walk = Walk { config, file };
    match &root.value {
        yaml::Value::Null => Ok(()),
        yaml::Value::Map(entries) => walk.section("", entries),
        _ => Err(walk.error(
            root.pos,
            "(top level)",
            "expected sections such as `server:` and `backend:`, each on its own line",
        )),
    }
}

struct Walk<'a> {
    config: &'a mut Config,
    file: &'a str,
}

impl Walk<'_> {
    fn section(&mut self, prefix: &str, entries: &[Entry]) -> Result<(), ConfigError> {
        for entry in entries {
            let path = if prefix.is_empty() {
                entry.key.clone()
            } else {
                format!("{prefix}.{}", entry.key)
            };
            if let Some(&(_, apply)) = KEYS.iter().find(|(key, _)| *key == path) {
                match apply {
                    Value(set) => self.leaf(&path, set, &entry.node)?,
                    List(set) => self.list(&path, set, &entry.node)?,
                    Profiles => self.profiles(&path, &entry.node)?,
                }
            } else if is_section(&path) {
                match &entry.node.value {
                    yaml::Value::Map(children) => self.section(&path, children)?,
                    // `typing:` with nothing under it, like `typing: {}`, sets nothing.
                    yaml::Value::Null => {}
                    _ => {
                        let message = format!(
                            "is a section: expected keys such as `{}` indented below it",
                            first_child(&path)
                        );
                        return Err(self.error(entry.node.pos, &path, &message));
                    }
                }
            } else {
                return Err(self.error(entry.key_pos, &path, &unknown_key_message(&path)));
            }
        }
        Ok(())
    }

    fn leaf(&mut self, path: &str, set: Setter, node: &Node) -> Result<(), ConfigError> {
        let text = self.text(path, node)?;
        set(self.config, text).map_err(|message| self.error(node.pos, path, &message))
    }

    /// A single value's text. An empty value is the empty text: "not set" for optional
    /// settings, an error for the others.
    fn text<'n>(&self, path: &str, node: &'n Node) -> Result<&'n str, ConfigError> {
        match &node.value {
            yaml::Value::Scalar(text) => Ok(text),
            yaml::Value::Null => Ok(""),
            yaml::Value::Map(_) => {
                Err(self.error(node.pos, path, "expected a single value, found a mapping"))
            }
            yaml::Value::List(_) => {
                Err(self.error(node.pos, path, "expected a single value, found a list"))
            }
        }
    }

    /// A list of single values; nothing (`allowed:`) is an empty list.
    fn list(&mut self, path: &str, set: ListSetter, node: &Node) -> Result<(), ConfigError> {
        let items: &[Node] = match &node.value {
            yaml::Value::List(items) => items,
            yaml::Value::Null => &[],
            yaml::Value::Scalar(_) | yaml::Value::Map(_) => {
                return Err(self.error(
                    node.pos,
                    path,
                    "expected a list, such as [openai, typing] or one `- name` per line below",
                ))
            }
        };
        let texts = items
            .iter()
            .map(|item| match &item.value {
                yaml::Value::Scalar(text) => Ok(text.as_str()),
                _ => Err(self.error(item.pos, path, "expected a single value as a list item")),
            })
            .collect::<Result<Vec<&str>, ConfigError>>()?;
        set(self.config, &texts).map_err(|(index, message)| {
            let pos = items.get(index).map_or(node.pos, |item| item.pos);
            self.error(pos, path, &message)
        })
    }

    /// `backend.langgraph.profiles`: free names, each a mapping of profile keys. The whole
    /// section replaces what an earlier source set, as a file's section would.
    fn profiles(&mut self, path: &str, node: &Node) -> Result<(), ConfigError> {
        let entries: &[Entry] =
            match &node.value {
                yaml::Value::Map(entries) => entries,
                yaml::Value::Null => &[],
                _ => return Err(self.error(
                    node.pos,
                    path,
                    "expected profiles by name, such as `sales:` indented below it with its keys",
                )),
            };
        let mut profiles = std::collections::BTreeMap::new();
        for entry in entries {
            let profile_path = format!("{path}.{}", entry.key);
            profile::check_name(&entry.key)
                .map_err(|message| self.error(entry.key_pos, &profile_path, &message))?;
            let keys: &[Entry] = match &entry.node.value {
                yaml::Value::Map(keys) => keys,
                // `sales:` or `sales: {}`: a profile that inherits everything.
                yaml::Value::Null => &[],
                _ => {
                    return Err(self.error(
                        entry.node.pos,
                        &profile_path,
                        "is a profile: expected keys such as `api_base` indented below it",
                    ))
                }
            };
            let mut spec = LangGraphProfileSpec::default();
            for key in keys {
                let key_path = format!("{profile_path}.{}", key.key);
                let Some(&(_, set)) = PROFILE_KEYS.iter().find(|(name, _)| *name == key.key) else {
                    let message =
                        match closest(&key.key, PROFILE_KEYS.iter().map(|(name, _)| *name)) {
                            Some(known) => {
                                format!("unknown profile key; did you mean {profile_path}.{known}?")
                            }
                            None => format!(
                                "unknown profile key; a profile may set {}",
                                PROFILE_KEYS
                                    .iter()
                                    .map(|(name, _)| *name)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                    return Err(self.error(key.key_pos, &key_path, &message));
                };
                let text = self.text(&key_path, &key.node)?;
                set(&mut spec, text)
                    .map_err(|message| self.error(key.node.pos, &key_path, &message))?;
            }
            profiles.insert(entry.key.clone(), spec);
        }
        self.config.backend.langgraph.profiles = profiles;
        Ok(())
    }

    fn error(&self, pos: Pos, key: &str, message: &str) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

fn is_section(path: &str) -> bool {
    KEYS.iter().any(|(key, _)| {
        key.strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn first_child(section: &str) -> &'static str {
    KEYS.iter()
        .find_map(|(key, _)| {
            key.strip_prefix(section)
                .and_then(|rest| rest.strip_prefix('.'))
        })
        .map_or("", |rest| rest.split('.').next().unwrap_or(rest))
}

/// Every known dotted path, sections included.
fn known_paths() -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for (key, _) in KEYS {
        let mut end = 0;
        for segment in key.split('.') {
            end += segment.len();
            let path = key[..end].to_string();
            if !paths.contains(&path) {
                paths.push(path);
            }
            end += 1;
        }
    }
    paths
}

/// "unknown key", with a suggestion: a close spelling in the same section, else the same name in
/// another section (`server.provider` is `backend.provider`).
fn unknown_key_message(path: &str) -> String {
    let (parent, name) = path.rsplit_once('.').unwrap_or(("", path));
    let paths = known_paths();
    let siblings = paths
        .iter()
        .filter_map(|known| {
            known
                .rsplit_once('.')
                .map_or(Some(("", known.as_str())), Some)
        })
        .filter(|(known_parent, _)| *known_parent == parent)
        .map(|(_, known_name)| known_name);
    let suggestion = closest(name, siblings)
        .map(|sibling| {
            if parent.is_empty() {
                sibling.to_string()
            } else {
                format!("{parent}.{sibling}")
            }
        })
        .or_else(|| {
            paths
                .iter()
                .find(|known| {
                    known
                        .rsplit_once('.')
                        .is_some_and(|(_, known_name)| known_name == name)
                })
                .cloned()
        });
    match suggestion {
        Some(known) => format!("unknown key; did you mean {known}?"),
        None => "unknown key (the example configuration lists every key)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        apply_text(&mut config, "test.yaml", text).map(|()| config)
    }

    fn error(text: &str) -> String {
        match load(text) {
            Ok(_) => panic!("accepted {text:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_file_overrides_only_the_keys_it_sets() {
        let config = load("server:\n  max_connections: 10\n").expect("loads");
        let mut expected = Config::default();
        expected.server.max_connections = 10;
        assert_eq!(config, expected);
    }

    #[test]
    fn empty_files_and_sections_set_nothing() {
        for text in [
            "",
            "# nothing\n",
            "server:\n",
            "backend:\n  typing: {}\n",
            "backend:\n  typing:\n",
            "metrics: {}\n",
        ] {
            assert_eq!(load(text).as_ref(), Ok(&Config::default()), "{text:?}");
        }
    }

    #[test]
    fn values_of_every_kind() {
        let text = "server:\n  socket_mode: 0o600\n  mem_limit: 512 MiB\n  max_handoff_bytes: 128KiB\n  \
                    write_timeout_ms: 1000\n  socket_type: seqpacket\nbackend:\n  mock:\n    message_delay_ms: 0\n  \
                    openai:\n    insecure_ssl: yes\n    api_socket: /run/proxy.sock\n  typing:\n    \
                    fortune_path: /usr/bin/fortune\nmetrics:\n  enabled: off\n  listen_addr: ':9100'\n";
        let config = load(text).expect("loads");
        assert_eq!(config.server.socket_mode, 0o600);
        assert_eq!(config.server.mem_limit, Some(512 << 20));
        assert_eq!(config.server.max_handoff_bytes, 128 << 10);
        assert_eq!(config.server.write_timeout, Duration::from_secs(1));
        assert_eq!(
            config.server.socket_type,
            super::super::SocketType::SeqPacket
        );
        assert_eq!(config.backend.mock.message_delay, Duration::ZERO);
        assert!(config.backend.openai.insecure_ssl);
        assert_eq!(
            config.backend.openai.api_socket.as_deref(),
            Some(Path::new("/run/proxy.sock"))
        );
        assert_eq!(
            config.backend.typing.fortune_path,
            Path::new("/usr/bin/fortune")
        );
        assert!(!config.metrics.enabled);
        assert_eq!(config.metrics.listen_addr, "0.0.0.0:9100");
    }

    #[test]
    fn new_keys_of_every_kind() {
        let text = "server:\n  data_dir: \"\"\n  max_attachment_bytes: 8MiB\n  data_max_age_ms: 0\n  \
                    workers: 3\n  resume_window_ms: 1500\n  resume_buffer_bytes: 64KiB\nbackend:\n  \
                    allowed:\n    - typing\n    - openai\n  typing:\n    use_api: false\n    \
                    default_model: gpt-4o\n  upstream:\n    sse_max_line_bytes: 1MiB\n  langgraph:\n    \
                    content_format: anthropic\n    output: raw\n";
        let config = load(text).expect("loads");
        assert_eq!(config.server.data_dir, None);
        assert_eq!(config.server.max_attachment_bytes, 8 << 20);
        assert_eq!(config.server.data_max_age, Duration::ZERO);
        assert_eq!(config.server.workers, std::num::NonZeroUsize::new(3));
        assert_eq!(config.server.resume_window, Duration::from_millis(1500));
        assert_eq!(config.server.resume_buffer_bytes, 64 << 10);
        assert_eq!(config.backend.allowed, ["typing", "openai"]);
        assert!(!config.backend.typing.use_api);
        assert_eq!(
            config.backend.typing.default_model.as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(config.backend.upstream.sse_max_line_bytes, 1 << 20);
        assert_eq!(
            config.backend.langgraph.content_format,
            crate::config::ContentFormat::Anthropic
        );
        assert_eq!(
            config.backend.langgraph.output,
            crate::config::LangGraphOutput::Raw
        );
        for empty in ["  allowed: []\n", "  allowed:\n"] {
            let config = load(&format!("backend:\n{empty}")).expect("loads");
            assert!(config.backend.allowed.is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn profiles_in_block_and_flow_style_are_the_same() {
        let block = "backend:\n  langgraph:\n    profiles:\n      sales:\n        api_base: http://127.0.0.1:18002\n        \
                     api_key: sales-key\n        api_socket: \"\"\n      claude:\n        assistant_id: claude-agent\n        \
                     content_format: anthropic\n        insecure_ssl: true\n      bare:\n";
        let flow = "backend: {langgraph: {profiles: {sales: {api_base: \"http://127.0.0.1:18002\", api_key: sales-key, \
                    api_socket: ''}, claude: {assistant_id: claude-agent, content_format: anthropic, insecure_ssl: true}, \
                    bare: {}}}}\n";
        let from_block = load(block).expect("block loads");
        assert_eq!(load(flow), Ok(from_block.clone()));
        let profiles = &from_block.backend.langgraph.profiles;
        assert_eq!(
            profiles.keys().collect::<Vec<_>>(),
            ["bare", "claude", "sales"]
        );
        assert_eq!(profiles["bare"], LangGraphProfileSpec::default());
        assert_eq!(profiles["sales"].api_socket, Some(None));
        assert_eq!(profiles["sales"].api_key.as_deref(), Some("sales-key"));
        assert_eq!(profiles["claude"].insecure_ssl, Some(true));
        // A later file's section replaces the whole set.
        let mut config = from_block;
        apply_text(
            &mut config,
            "second.yaml",
            "backend:\n  langgraph:\n    profiles: {}\n",
        )
        .expect("loads");
        assert!(config.backend.langgraph.profiles.is_empty());
    }

    #[test]
    fn profile_and_list_errors_point_at_the_value() {
        let cases = [
            (
                "backend:\n  langgraph:\n    profiles:\n      sales:\n        api_kye: sk-secret\n",
                "test.yaml:5:9: backend.langgraph.profiles.sales.api_kye: unknown profile key; did you mean \
                 backend.langgraph.profiles.sales.api_key?",
            ),
            (
                "backend:\n  langgraph:\n    profiles:\n      sales:\n        provider: x\n",
                "test.yaml:5:9: backend.langgraph.profiles.sales.provider: unknown profile key; a profile may set \
                 api_base, api_socket, api_key, assistant_id, stream_mode, content_format, output, insecure_ssl, \
                 ca_file, http2_enabled",
            ),
            (
                "backend:\n  langgraph:\n    profiles:\n      sales: agent\n",
                "test.yaml:4:14: backend.langgraph.profiles.sales: is a profile: expected keys such as `api_base` \
                 indented below it",
            ),
            (
                "backend:\n  langgraph:\n    profiles: [sales]\n",
                "test.yaml:3:15: backend.langgraph.profiles: expected profiles by name, such as `sales:` indented \
                 below it with its keys",
            ),
            (
                "backend:\n  langgraph:\n    profiles: {sales: {api_socket: lg.sock}}\n",
                "test.yaml:3:36: backend.langgraph.profiles.sales.api_socket must be an absolute path (starting with /)",
            ),
            (
                "backend:\n  langgraph:\n    profiles: {claude: {content_format: OpenAI}}\n",
                "test.yaml:3:41: backend.langgraph.profiles.claude.content_format must be \"openai\" or \
                 \"anthropic\", got \"OpenAI\"",
            ),
            (
                "backend:\n  langgraph:\n    profiles: {'': {}}\n",
                "test.yaml:3:16: backend.langgraph.profiles.: a profile needs a name (the default profile is \
                 backend.langgraph itself)",
            ),
            (
                "backend:\n  langgraph:\n    profiles: {sales: {api_key: [sk-secret]}}\n",
                "test.yaml:3:33: backend.langgraph.profiles.sales.api_key: expected a single value, found a list",
            ),
            (
                "backend:\n  langgraph:\n    profile: {}\n",
                "test.yaml:3:5: backend.langgraph.profile: unknown key; did you mean backend.langgraph.profiles?",
            ),
            (
                "backend:\n  allowed: [mock, gemini]\n",
                "test.yaml:2:19: backend.allowed must be one of: langgraph, mock, openai, typing",
            ),
            (
                "backend:\n  allowed: typing\n",
                "test.yaml:2:12: backend.allowed: expected a list, such as [openai, typing] or one `- name` per \
                 line below",
            ),
            (
                "backend:\n  allowed:\n    - typing\n    - [openai]\n",
                "test.yaml:4:7: backend.allowed: expected a single value as a list item",
            ),
            (
                "server:\n  shutdown_timeout_ms: 9223372036855\n",
                "test.yaml:2:24: server.shutdown_timeout_ms must be at most 9223372036854 (Go's longest duration, \
                 about 292 years)",
            ),
            (
                "server:\n  data_dir: handoff\n",
                "test.yaml:2:13: server.data_dir must be an absolute path (starting with /)",
            ),
            (
                "server:\n  workers: 0\n",
                "test.yaml:2:12: server.workers must be at least 1",
            ),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert_eq!(message, expected, "for {text:?}");
            assert!(!message.contains("sk-secret"));
        }
    }

    #[test]
    fn key_errors_name_file_line_column_and_key() {
        let cases = [
            (
                "server:\n  max_conections: 5\n",
                "test.yaml:2:3: server.max_conections: unknown key; did you mean server.max_connections?",
            ),
            ("server:\n  provider: mock\n", "test.yaml:2:3: server.provider: unknown key; did you mean backend.provider?"),
            ("sever:\n  socket_path: /x\n", "test.yaml:1:1: sever: unknown key; did you mean server?"),
            (
                "backend:\n  openai:\n    api_kye: sk-secret\n",
                "test.yaml:3:5: backend.openai.api_kye: unknown key; did you mean backend.openai.api_key?",
            ),
            ("tuning:\n  x: 1\n", "test.yaml:1:1: tuning: unknown key (the example configuration lists every key)"),
            (
                "server:\n  max_connections: lots\n",
                "test.yaml:2:20: server.max_connections: expected a whole number (0x, 0o or a leading 0 select hex or octal)",
            ),
            ("server:\n  max_connections: 0\n", "test.yaml:2:20: server.max_connections must be at least 1"),
            ("server:\n  max_connections:\n", "test.yaml:2:19: server.max_connections: expected a whole number (0x, 0o or a leading 0 select hex or octal)"),
            ("server:\n  socket_path: run/x.sock\n", "test.yaml:2:16: server.socket_path must be an absolute path (starting with /)"),
            (
                "server:\n  socket_mode: 660\n",
                "test.yaml:2:16: server.socket_mode: 660 is not a permission mode (largest 0777); write it in octal with a leading 0, e.g. 0660",
            ),
            (
                "server:\n  max_stream_duration_ms: -1\n",
                "test.yaml:2:27: server.max_stream_duration_ms: a duration cannot be negative",
            ),
            (
                "server:\n  mem_limit: 0MiB\n",
                "test.yaml:2:14: server.mem_limit: a size must be greater than zero",
            ),
            (
                "backend:\n  provider: gemini\n",
                "test.yaml:2:13: backend.provider must be one of: langgraph, mock, openai, typing",
            ),
            (
                "backend:\n  openai:\n    api_base: api.openai.com\n",
                "test.yaml:3:15: backend.openai.api_base must be a URL starting with http:// or https:// and a host",
            ),
            (
                "backend:\n  openai:\n    api_socket: proxy.sock\n",
                "test.yaml:3:17: backend.openai.api_socket must be an absolute path (starting with /)",
            ),
            (
                "backend:\n  langgraph:\n    content_format: OpenAI\n",
                "test.yaml:3:21: backend.langgraph.content_format must be \"openai\" or \"anthropic\", got \"OpenAI\"",
            ),
            (
                "backend:\n  openai:\n    insecure_ssl: maybe\n",
                "test.yaml:3:19: backend.openai.insecure_ssl: expected true or false (also yes/no, on/off, 1/0)",
            ),
            (
                "metrics:\n  listen_addr: localhost\n",
                "test.yaml:2:16: metrics.listen_addr must be an IP address and port such as 127.0.0.1:9090 or [::1]:9090",
            ),
            ("logging:\n  level: verbose\n", "test.yaml:2:10: logging.level must be one of: trace, debug, info, warn (or warning), error, off"),
            ("logging:\n  format: xml\n", "test.yaml:2:11: logging.format must be text or json"),
            ("server: /run/x.sock\n", "test.yaml:1:9: server: is a section: expected keys such as `socket_path` indented below it"),
            ("backend:\n  typing: fortune\n", "test.yaml:2:11: backend.typing: is a section: expected keys such as `fortune_path` indented below it"),
            ("server:\n  socket_path:\n    x: 1\n", "test.yaml:3:5: server.socket_path: expected a single value, found a mapping"),
            ("server:\n  socket_path:\n  - /a\n", "test.yaml:3:3: server.socket_path: expected a single value, found a list"),
            ("- server\n", "test.yaml:1:1: (top level): expected sections such as `server:` and `backend:`, each on its own line"),
            ("server:\n\tsocket_path: /x\n", "test.yaml:2:1: a tab is used for indentation; YAML allows only spaces there"),
        ];
        for (text, expected) in cases {
            assert_eq!(error(text), expected, "for {text:?}");
        }
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        for text in [
            "backend:\n  openai:\n    api_kye: sk-secret\n",
            "backend:\n  openai:\n    api_key:\n      sk-secret: 1\n",
            "backend:\n  langgraph:\n    api_key: \"sk-secret\n",
            "backend:\n  langgraph:\n    api_key: 'sk-secret' trailing\n",
        ] {
            let message = error(text);
            assert!(!message.contains("sk-secret"), "{message}");
        }
    }

    #[test]
    fn every_key_has_a_section_path_and_a_unique_name() {
        for (index, (key, _)) in KEYS.iter().enumerate() {
            assert!(key.contains('.'), "{key} must sit in a section");
            assert!(
                KEYS[..index].iter().all(|(other, _)| other != key),
                "{key} is listed twice"
            );
        }
    }
}
