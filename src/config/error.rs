//! Why a configuration was refused, in words an operator can act on.
//!
//! No variant ever carries a secret: values are quoted only by the flag and environment layers,
//! and the settings that hold API keys accept every string, so they never fail.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The command line itself is wrong (unknown flag, missing or bad value): `main` prints the
    /// message, then the usage text, and exits 2, as Go's `flag` package does.
    Usage { message: String, usage: String },
    /// The `-config` file could not be read.
    Read { path: PathBuf, reason: String },
    /// The file is not in the YAML subset we read.
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A key in the file is unknown, has the wrong type, or an invalid value.
    Key {
        file: String,
        line: usize,
        col: usize,
        key: String,
        message: String,
    },
    /// An environment variable holds an invalid value; `value` is `None` for secrets.
    Env {
        var: &'static str,
        value: Option<String>,
        message: String,
    },
    /// Settings that are valid one by one but not together.
    Invalid { message: String },
}

impl ConfigError {
    /// The usage text to print after the message, for command-line errors only.
    pub fn usage(&self) -> Option<&str> {
        match self {
            ConfigError::Usage { usage, .. } => Some(usage),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage { message, .. } => f.write_str(message),
            ConfigError::Read { path, reason } => write!(
                f,
                "cannot read the configuration file {}: {reason}; check the -config path",
                path.display()
            ),
            ConfigError::Syntax {
                file,
                line,
                col,
                message,
            } => {
                write!(f, "{file}:{line}:{col}: {message}")
            }
            ConfigError::Key {
                file,
                line,
                col,
                key,
                message,
            } => {
                // "server.workers must be at least 1" reads as a sentence; other messages
                // ("unknown key", "expected a whole number") follow the key after a colon.
                let join = if message.starts_with("must ") {
                    " "
                } else {
                    ": "
                };
                write!(f, "{file}:{line}:{col}: {key}{join}{message}")
            }
            ConfigError::Env {
                var,
                value: Some(value),
                message,
            } => {
                write!(f, "environment variable {var}={value:?}: {message}")
            }
            ConfigError::Env {
                var,
                value: None,
                message,
            } => write!(f, "environment variable {var}: {message}"),
            ConfigError::Invalid { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The candidate closest to a misspelt `word`, if one is close enough to be what was meant:
/// at most one edit for short words, two for longer ones.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let allowed = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters, with transpositions counted as one edit because
/// swapped letters are the most common typo.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in table.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        table[i * width] = i;
        for j in 1..=b.len() {
            let substitution = table[(i - 1) * width + j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution
                .min(table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_tolerate_small_typos_only() {
        let keys = [
            "max_connections",
            "socket_path",
            "socket_mode",
            "socket_type",
        ];
        assert_eq!(closest("max_conections", keys), Some("max_connections"));
        assert_eq!(closest("socket_paht", keys), Some("socket_path"));
        assert_eq!(closest("sockettype", keys), Some("socket_type"));
        assert_eq!(closest("listen", keys), None);
        assert_eq!(closest("hepl", ["help", "h"]), Some("help"));
    }

    #[test]
    fn only_command_line_errors_carry_usage() {
        let usage = ConfigError::Usage {
            message: "m".into(),
            usage: "u".into(),
        };
        assert_eq!(usage.usage(), Some("u"));
        assert_eq!(usage.to_string(), "m");
        let invalid = ConfigError::Invalid {
            message: "bad".into(),
        };
        assert_eq!(invalid.usage(), None);
    }
}
