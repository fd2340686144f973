//! Number, money, duration and time formatting shared by the pages. Times are shown in UTC so the
//! server-rendered HTML and the hydrated page agree.

/// `1234567` → `1,234,567`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1234567` → `1.2M`, for axes and compact cells.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}B", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a == 0.0 || a >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Dollars with enough decimals that small amounts do not read as zero.
pub fn usd(v: f64) -> String {
    if v == 0.0 {
        "$0.00".into()
    } else if v.abs() < 0.01 {
        format!("${v:.6}")
    } else if v.abs() < 100.0 {
        format!("${v:.4}")
    } else {
        format!("${}", int(v.round() as u64))
    }
}

/// A price per 1M tokens.
pub fn price(v: f64) -> String {
    if v < 1.0 {
        format!("${v:.3}")
    } else {
        format!("${v:.2}")
    }
}

pub fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

pub fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

pub fn bytes(n: u64) -> String {
    let mib = n as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Unix seconds → `HH:MM` (UTC).
pub fn clock(t: u64) -> String {
    format!("{:02}:{:02}", t / 3600 % 24, t / 60 % 60)
}

/// Unix seconds → `MM-DD HH:MM` (UTC).
pub fn day_clock(t: u64) -> String {
    let (_, m, d) = crate::calendar::civil_from_days((t / 86_400) as i64);
    format!("{m:02}-{d:02} {}", clock(t))
}

/// Unix milliseconds → `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn timestamp(ms: u64) -> String {
    let t = ms / 1000;
    let (y, m, d) = crate::calendar::civil_from_days((t / 86_400) as i64);
    format!("{y}-{m:02}-{d:02} {}:{:02}", clock(t), t % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(100), "100");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(usd(0.75), "$0.7500");
        assert_eq!(usd(0.000_123), "$0.000123");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_767_225_600_000), "2026-01-01 00:00:00");
        assert_eq!(day_clock(1_709_210_000), "02-29 12:33");
        assert_eq!(duration(3725), "1h 2m");
    }
}
