//! File types (SPEC §4.5 "Types"): from the extension, or from `attachment_types`; text or
//! binary; which types inline images and `image_path(s)` may have.

use super::names::last_component;

/// Largest text file, in bytes.
pub const TEXT_MAX: u64 = 1_048_576;
/// Largest binary file, in bytes.
pub const BINARY_MAX: u64 = 20_971_520;

/// How a file's content is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// UTF-8, inlined into the message text.
    Text,
    /// Base64-encoded into a part (or not sent).
    Binary,
}

impl Class {
    /// Most bytes a file of this class may hold.
    pub fn limit(self) -> u64 {
        match self {
            Class::Text => TEXT_MAX,
            Class::Binary => BINARY_MAX,
        }
    }
}

/// Extension (lower case, without the dot) → type.
const EXTENSIONS: [(&str, &str); 14] = [
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("log", "text/plain"),
    ("md", "text/markdown"),
    ("csv", "text/csv"),
    ("json", "application/json"),
    ("xml", "text/xml"),
    ("html", "text/html"),
    ("yaml", "text/yaml"),
];

/// The image types an inline image or an `image_path(s)` file may have.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The type for a name's extension (ASCII case-insensitive), `None` for any other or none.
pub fn from_extension(name: &str) -> Option<&'static str> {
    let (_, extension) = last_component(name).rsplit_once('.')?;
    if extension.eq_ignore_ascii_case("yml") {
        return Some("text/yaml");
    }
    EXTENSIONS
        .iter()
        .find(|(ext, _)| extension.eq_ignore_ascii_case(ext))
        .map(|&(_, mime)| mime)
}

/// An `attachment_types` value: trimmed, cut at the first `;`, trimmed again, its case kept.
/// `None` when nothing is left.
pub fn from_override(value: &str) -> Option<&str> {
    let cut = value.trim().split(';').next().unwrap_or("").trim();
    (!cut.is_empty()).then_some(cut)
}

/// Text when the type, lower-cased, is `text/*`, `application/json`, `application/xml` or
/// `application/yaml`; binary otherwise.
pub fn class(mime: &str) -> Class {
    let lower = mime.to_ascii_lowercase();
    let text = lower.starts_with("text/")
        || matches!(
            lower.as_str(),
            "application/json" | "application/xml" | "application/yaml"
        );
    if text {
        Class::Text
    } else {
        Class::Binary
    }
}

/// `image/*`, ASCII case-insensitive: always sent as an image part.
pub fn is_image(mime: &str) -> bool {
    mime.get(..6)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("image/"))
}

pub fn is_pdf(mime: &str) -> bool {
    mime.eq_ignore_ascii_case("application/pdf")
}

/// One of the four image types, ASCII case-insensitive.
pub fn is_allowed_image(mime: &str) -> bool {
    IMAGE_TYPES.iter().any(|t| mime.eq_ignore_ascii_case(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_case_insensitive_and_only_the_last_counts() {
        assert_eq!(from_extension("a.PNG"), Some("image/png"));
        assert_eq!(from_extension("sub/b.webp"), Some("image/webp"));
        assert_eq!(from_extension("p.JpEg"), Some("image/jpeg"));
        assert_eq!(from_extension("x.tar.yml"), Some("text/yaml"));
        assert_eq!(from_extension("n.log"), Some("text/plain"));
        assert_eq!(from_extension("r.pdf"), Some("application/pdf"));
        assert_eq!(from_extension("a.bmp"), None);
        assert_eq!(from_extension("README"), None);
        assert_eq!(from_extension("dir.png/file"), None);
        assert_eq!(from_extension("a."), None);
    }

    #[test]
    fn overrides_are_trimmed_cut_and_keep_their_case() {
        assert_eq!(from_override(" IMAGE/PNG "), Some("IMAGE/PNG"));
        assert_eq!(
            from_override("Text/Plain; charset=utf-8"),
            Some("Text/Plain")
        );
        assert_eq!(from_override(" ; x"), None);
        assert_eq!(from_override(""), None);
        assert_eq!(from_override("   "), None);
    }

    #[test]
    fn classes() {
        for text in [
            "text/plain",
            "Text/Plain",
            "TEXT/x-anything",
            "application/json",
            "Application/YAML",
            "application/xml",
        ] {
            assert_eq!(class(text), Class::Text, "{text}");
        }
        for binary in [
            "image/png",
            "application/pdf",
            "application/octet-stream",
            "textual/x",
            "application/jsonl",
        ] {
            assert_eq!(class(binary), Class::Binary, "{binary}");
        }
        assert!(is_image("IMAGE/PNG"));
        assert!(is_image("image/svg+xml"));
        assert!(!is_image("imag"));
        assert!(!is_image("é"));
        assert!(is_pdf("Application/PDF"));
        assert!(is_allowed_image("IMAGE/WEBP"));
        assert!(!is_allowed_image("image/bmp"));
        assert!(!is_allowed_image("text/html"));
    }
}
