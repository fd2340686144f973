//! Budget periods in UTC: days since 1970 and calendar months (`year * 12 + month - 1`).

use crate::calendar::{civil_from_days, days_from_civil};

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
