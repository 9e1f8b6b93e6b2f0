//! The one rule for byte sizes on both binaries' command lines (`--mem-limit` and friends),
//! the one `parse-size` users expect: `kB`/`MB`/`GB` are powers of 1000, `KiB`/`MiB`/`GiB`
//! powers of 1024, a bare number is bytes. Parses text only; knows nothing of flags.

use std::fmt;

/// The rule in one sentence, for `--help` texts.
pub const SIZE_RULE: &str =
    "kB, MB, GB are powers of 1000 and KiB, MiB, GiB powers of 1024; a bare number is bytes";

/// Why a size did not parse; its `Display` is `parse-size`'s reason (e.g. "invalid digit").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeError(parse_size::Error);

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SizeError {}

/// Parses a byte size by [`SIZE_RULE`]: `4096`, `64KiB`, `1GB` (= 10⁹), `1GiB` (= 2³⁰),
/// `1.5 MiB`; units are case-insensitive, the `B` is optional, spaces around are ignored.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    parse_size::parse_size(s.trim()).map_err(SizeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_units_are_powers_of_1000_binary_ones_of_1024() {
        let table: &[(&str, u64)] = &[
            ("0", 0),
            ("4096", 4096),
            ("1B", 1),
            ("1kB", 1_000),
            ("1KB", 1_000),
            ("1k", 1_000),
            ("1MB", 1_000_000),
            ("1GB", 1_000_000_000),
            ("2 GB", 2_000_000_000),
            ("1KiB", 1 << 10),
            ("1kib", 1 << 10),
            ("64KiB", 64 << 10),
            ("512MiB", 512 << 20),
            ("1GiB", 1 << 30),
            ("1.5KiB", 1536),
            (" 16MiB ", 16 << 20),
        ];
        for (text, want) in table {
            assert_eq!(parse_size(text), Ok(*want), "{text:?}");
        }
    }

    #[test]
    fn not_a_size_says_why() {
        for text in ["", "lots", "-1", "1 XB", "GB", "1GB2"] {
            let err = parse_size(text).expect_err(text);
            assert!(!err.to_string().is_empty(), "{text:?}");
        }
    }
}
