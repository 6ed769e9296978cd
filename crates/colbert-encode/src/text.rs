//! Text preprocessing exactly as sentence-transformers does it before tokenizing: Python's
//! `str.strip()` and, when the model asks for it, `str.lower()`.

/// Python's `str.isspace()` set: Unicode White_Space characters plus the four ASCII information
/// separators U+001C..U+001F (which Rust's `char::is_whitespace` does not include). U+FEFF is not
/// whitespace for Python, so it is kept, unlike JavaScript's `trim()`.
pub fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'..='\u{000D}'
            | '\u{001C}'..='\u{001F}'
            | '\u{0020}'
            | '\u{0085}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// `str(s).strip()` then `.lower()` if `lowercase`.
pub fn preprocess(text: &str, lowercase: bool) -> String {
    let stripped = text.trim_matches(is_python_space);
    if lowercase {
        // Rust's full Unicode lowercasing, like CPython's, maps a word-final capital sigma to 'ς'.
        stripped.to_lowercase()
    } else {
        stripped.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_python_whitespace_only() {
        assert_eq!(preprocess("\u{1c}\u{a0} a b \t\n\u{3000}", false), "a b");
        assert_eq!(preprocess("\u{feff}x\u{feff}", false), "\u{feff}x\u{feff}");
        assert_eq!(preprocess("  ", false), "");
    }

    #[test]
    fn lowercases_like_python() {
        assert_eq!(preprocess(" ΟΔΟΣ Hello ", true), "οδος hello");
    }
}
