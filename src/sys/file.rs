//! Reading a whole file whose size we do not control, with a bound.
//!
//! Configuration and CA files are named by the operator and read once at start-up (and on a
//! reload). A path to `/dev/zero`, a FIFO fed forever or a mistyped multi-gigabyte log would make
//! an unbounded read grow memory until the process dies, so every such read stops after
//! `limit + 1` bytes and fails clearly when the file was larger than `limit`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(io::Error),
    /// The file holds more than `limit` bytes; nothing of it is kept.
    TooLarge { limit: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(error) => write!(f, "{error}"),
            ReadError::TooLarge { limit } => write!(
                f,
                "it is larger than {limit} bytes, the most this file may hold"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// The whole content of `path`, or `TooLarge` when it holds more than `limit` bytes. Works for
/// files that are not regular (a pipe, `/dev/zero`): at most `limit + 1` bytes are ever read.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    // The size is only a hint for the first allocation: devices and pipes report 0, and a
    // regular file may grow between `stat` and `read`.
    let hint = file
        .metadata()
        .map(|metadata| metadata.len().min(limit))
        .unwrap_or(0);
    let mut content = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(ReadError::Io)?;
    if content.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_file(name: &str, content: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "streaming-daemon-read-bounded-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, content).expect("temp dir is writable");
        path
    }

    #[test]
    fn an_endless_device_stops_just_past_the_limit() {
        match read_bounded(Path::new("/dev/zero"), 4096) {
            Err(ReadError::TooLarge { limit: 4096 }) => {}
            other => panic!("{other:?}"),
        }
        let message = read_bounded(Path::new("/dev/zero"), 10)
            .expect_err("refused")
            .to_string();
        assert_eq!(
            message,
            "it is larger than 10 bytes, the most this file may hold"
        );
    }

    #[test]
    fn a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
        let path = temp_file("exact", b"0123456789");
        assert_eq!(
            read_bounded(&path, 10).expect("fits"),
            b"0123456789".to_vec()
        );
        assert!(matches!(
            read_bounded(&path, 9),
            Err(ReadError::TooLarge { limit: 9 })
        ));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn empty_and_missing_files() {
        let path = temp_file("empty", b"");
        assert_eq!(read_bounded(&path, 0).expect("fits"), Vec::<u8>::new());
        let _ = std::fs::remove_file(&path);
        match read_bounded(Path::new("/nonexistent/streaming-daemon"), 10) {
            Err(ReadError::Io(error)) => assert_eq!(error.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_directory_is_an_error_not_a_hang() {
        assert!(matches!(
            read_bounded(Path::new("/"), 10),
            Err(ReadError::Io(_))
        ));
    }
}
