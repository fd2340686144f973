//! UTC calendar dates as days since 1970-01-01, after Howard Hinnant's civil-date algorithms.
//! Shared by budget periods on the server and date fields in the console. Budget periods are in
//! UTC: days since 1970 and calendar months (`year * 12 + month - 1`).

/// Days since 1970-01-01 → (year, month 1–12, day 1–31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month 1–12, day 1–31) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn day_id(unix_s: u64) -> u64 {
    unix_s / 86_400
}

pub fn month_id(unix_s: u64) -> u64 {
    let (y, m, _) = civil_from_days(day_id(unix_s) as i64);
    (y as u64) * 12 + (m as u64 - 1)
}

/// Unix seconds when the current day (`month == false`) or month ends.
pub fn period_end(unix_s: u64, month: bool) -> u64 {
    if !month {
        return (day_id(unix_s) + 1) * 86_400;
    }
    let next = month_id(unix_s) + 1;
    let (y, m) = ((next / 12) as i64, (next % 12) as u32 + 1);
    days_from_civil(y, m, 1) as u64 * 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_period_ends() {
        // 2026-11-26T15:00:00Z
        let t = 1_795_705_200;
        assert_eq!(civil_from_days(day_id(t) as i64), (2026, 11, 26));
        assert_eq!(month_id(t), 2026 * 12 + 10);
        // 2026-11-27T00:00:00Z and 2026-12-01T00:00:00Z
        assert_eq!(period_end(t, false), 1_795_737_600);
        assert_eq!(period_end(t, true), 1_796_083_200);
        // December rolls over into January.
        let dec = 1_797_000_000; // 2026-12-11
        assert_eq!(civil_from_days(days_from_civil(2027, 1, 1)), (2027, 1, 1));
        assert_eq!(
            period_end(dec, true),
            days_from_civil(2027, 1, 1) as u64 * 86_400
        );
        // Leap day.
        assert_eq!(civil_from_days(days_from_civil(2028, 2, 29)), (2028, 2, 29));
    }
}
