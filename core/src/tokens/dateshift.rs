//! Date shifting: every date of one subject moves by the same secret offset in
//! ±`window_days` (never 0), so intervals within a patient's record are preserved while the
//! real dates are hidden. The offset is derived from the subject's key, so it dies with
//! `forget_subject`. Dates are ISO 8601 calendar dates, `YYYY-MM-DD`.

use crate::kdf::Mac;
use crate::{Error, Result};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD` (years 0001-9999) into a day count.
pub(crate) fn parse(date: &str) -> Result<i64> {
    let bad = || Error::invalid("date", "must be a calendar date YYYY-MM-DD");
    let b = date.as_bytes();
    // Digits only: `u32::from_str` alone would also take a sign ("2000-+1-15"), giving a
    // second spelling of a date (and of a token).
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let (y, m, d) = (num(&date[0..4])?, num(&date[5..7])?, num(&date[8..10])?);
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(i64::from(y), m) {
        return Err(bad());
    }
    Ok(days_from_civil(i64::from(y), m, d))
}

/// Formats a day count as `YYYY-MM-DD`; dates shifted outside years 1-9999 are refused.
pub(crate) fn format(days: i64) -> Result<String> {
    let (y, m, d) = civil_from_days(days);
    if !(1..=9999).contains(&y) {
        return Err(Error::invalid("date", "shifted out of the years 0001-9999"));
    }
    Ok(format!("{y:04}-{m:02}-{d:02}"))
}

/// The year of a day count (for "this year" in Safe Harbor's age rule).
pub(crate) fn year_of_days(days: i64) -> i64 {
    civil_from_days(days).0
}

/// The subject's offset in days: uniform over [-window, -1] ∪ [1, window].
pub(crate) fn offset(mac: &Mac, field: &str, window_days: u32) -> i64 {
    let tag = mac.tag(&[b"date-shift", field.as_bytes()]);
    let mut x = [0u8; 8];
    x.copy_from_slice(&tag[..8]);
    let w = u64::from(window_days.max(1));
    // 2w values; the modulo bias is below 2^-50 for any window up to 3650 days.
    let r = (u64::from_be_bytes(x) % (2 * w)) as i64;
    let w = w as i64;
    if r < w { r - w } else { r - w + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        for (s, days) in [
            ("1970-01-01", 0),
            ("2000-02-29", 11_016),
            ("1969-12-31", -1),
        ] {
            assert_eq!(parse(s).expect("parse"), days);
            assert_eq!(format(days).expect("format"), s);
        }
        for d in (-700_000..2_900_000).step_by(997) {
            assert_eq!(parse(&format(d).expect("f")).expect("p"), d);
        }
        for bad in [
            "2001-02-29",
            "2000-13-01",
            "2000-00-10",
            "20000-01-01",
            "2000/01/01",
            "0000-01-01",
            "2000-1-1",
            "2000-+1-15",
            "+500-01-15",
            "ab",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_are_never_zero_and_stay_in_window() {
        for i in 0..2000u32 {
            let k = crate::secret::Key32::from_slice(&[(i % 251) as u8; 32]).expect("k");
            let o = offset(&Mac::new(&k), &format!("f{i}"), 30);
            assert!(o != 0 && (-30..=30).contains(&o), "{o}");
        }
    }
}
