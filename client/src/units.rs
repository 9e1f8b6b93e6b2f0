//! Human formatting of counts, bytes and rates for logs, tables and reports.
//! Formatting only: never parses, never rounds data that is stored.

/// `24000` → `24,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// IEC bytes, three significant digits, trailing zeros dropped: `1.82 MiB`, `812 B`, `-4 KiB`,
/// `180 KiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if !n.is_finite() {
        return format!("{n} B");
    }
    let sign = if n < 0.0 { "-" } else { "" };
    let mut v = n.abs();
    if v < 1024.0 {
        return format!("{sign}{v:.0} B");
    }
    let mut unit = 0;
    v /= 1024.0;
    // 1023.5 KiB prints as "1 MiB", not "1024 KiB".
    while v >= 1023.5 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let decimals = if v < 9.995 {
        2
    } else if v < 99.95 {
        1
    } else {
        0
    };
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{sign}{s} {}", UNITS[unit])
}

/// [`bytes`] of a reading that may be missing (RSS off Linux): `?` then.
pub fn opt_bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_string(), |b| bytes(b as f64))
}

/// Bytes per request with an explicit sign and one decimal: `+0.3 B`, `-12.0 B`, `+1.02 KiB`.
pub fn per_request(n: f64) -> String {
    // A slope of -0.02 B reads `+0.0 B`, not `-0.0 B`.
    let n = if n.abs() < 0.05 { 0.0 } else { n };
    if n.abs() < 1024.0 {
        format!("{n:+.1} B")
    } else {
        let s = bytes(n);
        if n > 0.0 { format!("+{s}") } else { s }
    }
}

/// A rate in bytes/request: grouped integer from 100 up (`1,024`), one decimal from 1
/// (`16.2`), two below (`0.12`).
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a >= 99.5 {
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}{}", count(a.round() as u64))
    } else if a >= 0.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_log_line() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(24_000), "24,000");
        assert_eq!(count(1_234_567), "1,234,567");
        for (b, want) in [
            (0.0, "0 B"),
            (812.0, "812 B"),
            (1023.0, "1023 B"),
            (1024.0, "1 KiB"),
            (1536.0, "1.5 KiB"),
            (184_320.0, "180 KiB"),
            (-4096.0, "-4 KiB"),
            (1_048_064.0, "1 MiB"),
            (1.82 * 1024.0 * 1024.0, "1.82 MiB"),
            (9.4 * 1024.0 * 1024.0, "9.4 MiB"),
            (16_000_000.0, "15.3 MiB"),
            (4_096_000_000.0, "3.81 GiB"),
        ] {
            assert_eq!(bytes(b), want, "{b}");
        }
        for (r, want) in [
            (1024.0, "1,024"),
            (1019.4, "1,019"),
            (16.04, "16.0"),
            (0.1, "0.10"),
            (-0.3, "-0.30"),
            (-1234.0, "-1,234"),
        ] {
            assert_eq!(rate(r), want, "{r}");
        }
        assert_eq!(per_request(0.3), "+0.3 B");
        assert_eq!(per_request(-12.0), "-12.0 B");
        assert_eq!(per_request(1044.0), "+1.02 KiB");
    }
}
