//! Which file names a handoff may give (SPEC §4.5 "Names"). Only the shape is checked here;
//! what a name turns out to be on disk is `open.rs`'s business.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A name relative to `data_dir`: `/`-separated components, none empty, `.` or `..`, no NUL
/// byte, no leading `/`. `"."`, `""`, `"a//b"`, `"a/"` and `"x/../b"` are all refused.
pub fn is_relative_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The name under `data_dir` that an `image_path` value gives: the value must be absolute and
/// start with the directory as configured, or with its canonical path, followed by `/`; the rest
/// must be a relative name. `None` for anything else.
pub fn image_path_name<'a>(value: &'a str, configured: &Path, canonical: &Path) -> Option<&'a str> {
    [configured, canonical].into_iter().find_map(|dir| {
        let dir = dir.as_os_str().as_bytes();
        // A configured `/srv/data/` and `/srv/data` are the same directory.
        let dir = dir.strip_suffix(b"/").unwrap_or(dir);
        let rest = value.as_bytes().strip_prefix(dir)?.strip_prefix(b"/")?;
        let name = &value[value.len() - rest.len()..];
        is_relative_name(name).then_some(name)
    })
}

/// The last component of a checked name: a file part's `filename`, and where the type comes
/// from.
pub fn last_component(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The name split into its parent directories and its last component.
pub fn split_parent(name: &str) -> (Option<&str>, &str) {
    match name.rsplit_once('/') {
        Some((parent, leaf)) => (Some(parent), leaf),
        None => (None, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names() {
        for good in [
            "a.txt",
            "sub/b.webp",
            "x..y",
            ".hidden.png",
            "a b.txt",
            "é.txt",
            "...png",
        ] {
            assert!(is_relative_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "/etc/passwd",
            "./b.txt",
            "x/../b.txt",
            "../secret.txt",
            "a//b",
            "a/",
            "a/.",
            "a\0b",
            "/",
        ] {
            assert!(!is_relative_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn image_paths_must_be_under_the_directory_as_configured_or_canonical() {
        let configured = Path::new("/run/handoff-data");
        let canonical = Path::new("/var/run/handoff-data");
        let name = |value| image_path_name(value, configured, canonical);
        assert_eq!(name("/run/handoff-data/a.png"), Some("a.png"));
        assert_eq!(name("/var/run/handoff-data/sub/b.webp"), Some("sub/b.webp"));
        assert_eq!(name("/run/handoff-data"), None);
        assert_eq!(name("/run/handoff-data/"), None);
        assert_eq!(name("/run/handoff-database/a.png"), None);
        assert_eq!(name("/run/handoff-data/../x.png"), None);
        assert_eq!(name("/run/handoff-data//a.png"), None);
        assert_eq!(name("a.png"), None);
        assert_eq!(name("/etc/hostname"), None);
        assert_eq!(
            image_path_name("/srv/d/a.png", Path::new("/srv/d/"), Path::new("/srv/d")),
            Some("a.png")
        );
    }

    #[test]
    fn components() {
        assert_eq!(last_component("sub/dir/r.pdf"), "r.pdf");
        assert_eq!(last_component("r.pdf"), "r.pdf");
        assert_eq!(split_parent("sub/dir/r.pdf"), (Some("sub/dir"), "r.pdf"));
        assert_eq!(split_parent("r.pdf"), (None, "r.pdf"));
    }
}
