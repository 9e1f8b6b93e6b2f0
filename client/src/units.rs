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

/// IEC bytes with three significant digits: `1.82 MiB`, `812 B`, `-4.00 KiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let sign = if n < 0.0 { "-" } else { "" };
    let mut v = n.abs();
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{sign}{v:.0} B")
    } else if v >= 100.0 {
        format!("{sign}{v:.0} {}", UNITS[unit])
    } else if v >= 10.0 {
        format!("{sign}{v:.1} {}", UNITS[unit])
    } else {
        format!("{sign}{v:.2} {}", UNITS[unit])
    }
}

/// Bytes per request with an explicit sign and one decimal: `+0.3 B`, `-12.0 B`, `+1.02 KiB`.
pub fn per_request(n: f64) -> String {
    if n.abs() < 1024.0 {
        format!("{n:+.1} B")
    } else {
        let s = bytes(n);
        if n > 0.0 { format!("+{s}") } else { s }
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
        assert_eq!(bytes(812.0), "812 B");
        assert_eq!(bytes(1.82 * 1024.0 * 1024.0), "1.82 MiB");
        assert_eq!(bytes(-4096.0), "-4.00 KiB");
        assert_eq!(bytes(9.4 * 1024.0 * 1024.0), "9.40 MiB");
        assert_eq!(bytes(150.0 * 1024.0), "150 KiB");
        assert_eq!(per_request(0.3), "+0.3 B");
        assert_eq!(per_request(-12.0), "-12.0 B");
        assert_eq!(per_request(1044.0), "+1.02 KiB");
    }
}
