//! ISO 8601 weeks (`2026-W48`): the unit a digest covers.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike as _, Days, NaiveDate, TimeZone as _, Utc, Weekday};

use crate::DigestError;

/// An ISO 8601 week: Monday 00:00 to the next Monday 00:00. Only [`IsoWeek::parse`] and
/// [`IsoWeek::containing`] make one, so every value names a week that exists (week 53 only
/// in years that have one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsoWeek {
    year: i32,
    week: u32,
}

impl IsoWeek {
    /// Parses `YYYY-Www` (`2026-W48`; a lower-case `w` is accepted).
    pub fn parse(s: &str) -> Result<IsoWeek, DigestError> {
        let bad = || DigestError::InvalidWeek(s.to_owned());
        let t = s.trim();
        let (y, w) = t.split_once(['W', 'w']).ok_or_else(bad)?;
        let y = y.strip_suffix('-').ok_or_else(bad)?;
        if y.len() != 4 || w.len() != 2 || !y.bytes().chain(w.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let week: u32 = w.parse().map_err(|_| bad())?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(bad)?;
        Ok(IsoWeek { year, week })
    }

    /// The week a date belongs to.
    pub fn containing(date: NaiveDate) -> IsoWeek {
        let w = date.iso_week();
        IsoWeek {
            year: w.year(),
            week: w.week(),
        }
    }

    /// The ISO week-numbering year (may differ from the calendar year of its days).
    pub fn year(self) -> i32 {
        self.year
    }

    /// The week number, 1–53.
    pub fn week(self) -> u32 {
        self.week
    }

    /// Its Monday.
    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).unwrap_or_default()
    }

    /// Its Sunday.
    pub fn sunday(self) -> NaiveDate {
        self.monday()
            .checked_add_days(Days::new(6))
            .unwrap_or_default()
    }

    /// Monday 00:00 UTC.
    pub fn start(self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.monday().and_time(chrono::NaiveTime::MIN))
    }

    /// The next Monday 00:00 UTC (exclusive end).
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    /// The week before.
    pub fn prev(self) -> IsoWeek {
        IsoWeek::containing(
            self.monday()
                .checked_sub_days(Days::new(7))
                .unwrap_or_default(),
        )
    }

    /// The week after.
    pub fn next(self) -> IsoWeek {
        IsoWeek::containing(
            self.monday()
                .checked_add_days(Days::new(7))
                .unwrap_or_default(),
        )
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl FromStr for IsoWeek {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IsoWeek::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn parses_and_prints() {
        let w = IsoWeek::parse("2026-W48").expect("valid");
        assert_eq!((w.year(), w.week()), (2026, 48));
        assert_eq!(w.to_string(), "2026-W48");
        assert_eq!(w.monday(), d(2026, 11, 23));
        assert_eq!(w.sunday(), d(2026, 11, 29));
        assert_eq!("2026-w05".parse::<IsoWeek>().expect("lower w").week(), 5);
    }

    #[test]
    fn rejects_weeks_that_do_not_exist_or_are_malformed() {
        for bad in [
            "",
            "2026",
            "2026-W",
            "2026-W0",
            "2026-W00",
            "2026-W54",
            "2025-W53",
            "26-W10",
            "2026W10",
            "2026-W1x",
            "2026-W+1",
            "+026-W10",
            "2026-W100",
        ] {
            assert!(IsoWeek::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        // 2026 has 53 ISO weeks (it starts on a Thursday).
        assert!(IsoWeek::parse("2026-W53").is_ok());
    }

    #[test]
    fn year_boundaries() {
        // 2027-01-01 is a Friday: it belongs to 2026-W53.
        assert_eq!(IsoWeek::containing(d(2027, 1, 1)).to_string(), "2026-W53");
        // 2024-12-30 is a Monday: it starts 2025-W01.
        assert_eq!(IsoWeek::containing(d(2024, 12, 30)).to_string(), "2025-W01");
        let w = IsoWeek::parse("2026-W53").expect("valid");
        assert_eq!(w.next().to_string(), "2027-W01");
        assert_eq!(w.next().prev(), w);
        assert_eq!(
            IsoWeek::parse("2025-W01")
                .expect("valid")
                .prev()
                .to_string(),
            "2024-W52"
        );
        assert_eq!(w.end() - w.start(), chrono::Duration::days(7));
    }
}
