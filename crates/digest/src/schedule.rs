//! When a tenant's digest is due: a pure function of the tenant's send day, hour and time
//! zone and "now". The digest covering ISO week W is sent on the tenant's weekday of week W+1
//! at the tenant's hour, local time (default Tuesday 08:00), so late reports have arrived.

use chrono::{DateTime, Days, LocalResult, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::{DigestError, IsoWeek};

/// A tenant's send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    weekday: u8,
    hour: u8,
    tz: Tz,
}

impl Schedule {
    /// `weekday` is ISO (1 = Monday … 7 = Sunday), `hour` 0–23, `timezone` an IANA name.
    pub fn new(weekday: i16, hour: i16, timezone: &str) -> Result<Schedule, DigestError> {
        let bad = |what: String| DigestError::InvalidSchedule(what);
        let weekday = u8::try_from(weekday)
            .ok()
            .filter(|d| (1..=7).contains(d))
            .ok_or_else(|| bad(format!("weekday {weekday} is not 1 (Monday) to 7 (Sunday)")))?;
        let hour = u8::try_from(hour)
            .ok()
            .filter(|h| *h < 24)
            .ok_or_else(|| bad(format!("hour {hour} is not 0 to 23")))?;
        let tz: Tz = timezone
            .trim()
            .parse()
            .map_err(|_| bad(format!("time zone {timezone:?} is not an IANA zone name")))?;
        Ok(Schedule { weekday, hour, tz })
    }

    /// The default: Tuesday 08:00 UTC.
    pub fn default_utc() -> Schedule {
        Schedule {
            weekday: 2,
            hour: 8,
            tz: Tz::UTC,
        }
    }

    /// The instant the digest covering `week` becomes due: the tenant's weekday of the
    /// following week at the tenant's hour, local time. A local time skipped by a DST change
    /// moves forward to the first existing time; a repeated one takes its first occurrence.
    pub fn send_time(&self, week: IsoWeek) -> DateTime<Utc> {
        let date = week
            .next()
            .monday()
            .checked_add_days(Days::new(u64::from(self.weekday) - 1))
            .unwrap_or_default();
        let mut local: NaiveDateTime = date
            .and_hms_opt(u32::from(self.hour), 0, 0)
            .unwrap_or_default();
        // At most a few hours can be skipped by any zone's transition.
        for _ in 0..24 {
            match self.tz.from_local_datetime(&local) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
                LocalResult::None => local += chrono::Duration::minutes(15),
            }
        }
        Utc.from_utc_datetime(&local)
    }

    /// The most recent week whose digest is due at `now` (its send time has passed).
    pub fn due_week(&self, now: DateTime<Utc>) -> IsoWeek {
        let local_date = now.with_timezone(&self.tz).date_naive();
        let previous = IsoWeek::containing(local_date).prev();
        if self.send_time(previous) <= now {
            previous
        } else {
            previous.prev()
        }
    }

    /// ISO weekday, 1 = Monday.
    pub fn weekday(&self) -> u8 {
        self.weekday
    }

    /// Local hour.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    fn week(s: &str) -> IsoWeek {
        IsoWeek::parse(s).expect("week")
    }

    #[test]
    fn default_is_tuesday_eight_utc_of_the_next_week() {
        let s = Schedule::default_utc();
        // 2026-W48 is 23–29 November; its digest goes out Tuesday 1 December 08:00.
        assert_eq!(s.send_time(week("2026-W48")), utc("2026-12-01T08:00:00Z"));
        assert_eq!(s.due_week(utc("2026-12-01T07:59:59Z")), week("2026-W47"));
        assert_eq!(s.due_week(utc("2026-12-01T08:00:00Z")), week("2026-W48"));
        // Monday of the week after: still the week before last.
        assert_eq!(s.due_week(utc("2026-11-30T12:00:00Z")), week("2026-W47"));
        assert_eq!(s.due_week(utc("2026-12-06T23:00:00Z")), week("2026-W48"));
    }

    #[test]
    fn time_zones_shift_the_instant() {
        let tokyo = Schedule::new(2, 8, "Asia/Tokyo").expect("valid");
        assert_eq!(
            tokyo.send_time(week("2026-W48")),
            utc("2026-11-30T23:00:00Z")
        );
        // Monday 23:30 UTC is already Tuesday 08:30 in Tokyo.
        assert_eq!(
            tokyo.due_week(utc("2026-11-30T23:30:00Z")),
            week("2026-W48")
        );
        let la = Schedule::new(1, 0, "America/Los_Angeles").expect("valid");
        // Monday 00:00 in Los Angeles (PST, UTC-8) is 08:00 UTC.
        assert_eq!(la.send_time(week("2026-W48")), utc("2026-11-30T08:00:00Z"));
        // Sunday 2026-11-29 23:00 UTC is still Sunday 15:00 in LA: W47's digest is due.
        assert_eq!(la.due_week(utc("2026-11-29T23:00:00Z")), week("2026-W47"));
        // A zone ahead of UTC on Monday while UTC is still Sunday.
        let auckland = Schedule::new(1, 6, "Pacific/Auckland").expect("valid");
        // Monday 30 Nov 06:00 NZDT (UTC+13) = Sunday 29 Nov 17:00 UTC.
        assert_eq!(
            auckland.send_time(week("2026-W48")),
            utc("2026-11-29T17:00:00Z")
        );
        assert_eq!(
            auckland.due_week(utc("2026-11-29T17:00:00Z")),
            week("2026-W48")
        );
    }

    #[test]
    fn daylight_saving_changes() {
        let berlin = Schedule::new(2, 8, "Europe/Berlin").expect("valid");
        // Summer time (UTC+2) until 25 October 2026, winter (UTC+1) after.
        assert_eq!(
            berlin.send_time(week("2026-W41")),
            utc("2026-10-13T06:00:00Z")
        );
        assert_eq!(
            berlin.send_time(week("2026-W44")),
            utc("2026-11-03T07:00:00Z")
        );
        // Sunday 29 March 2026 02:00 does not exist in Berlin: moved to 03:00 CEST.
        let gap = Schedule::new(7, 2, "Europe/Berlin").expect("valid");
        assert_eq!(gap.send_time(week("2026-W12")), utc("2026-03-29T01:00:00Z"));
        // Sunday 25 October 2026 02:00 happens twice: the first (CEST) counts.
        assert_eq!(gap.send_time(week("2026-W42")), utc("2026-10-25T00:00:00Z"));
        // US: 8 March 2026 02:30 is skipped in New York.
        let ny = Schedule::new(7, 2, "America/New_York").expect("valid");
        assert_eq!(ny.send_time(week("2026-W09")), utc("2026-03-08T07:00:00Z"));
    }

    #[test]
    fn year_end_and_invalid_settings() {
        let s = Schedule::default_utc();
        assert_eq!(s.send_time(week("2026-W53")), utc("2027-01-05T08:00:00Z"));
        assert_eq!(s.due_week(utc("2027-01-05T09:00:00Z")), week("2026-W53"));
        assert!(Schedule::new(0, 8, "UTC").is_err());
        assert!(Schedule::new(8, 8, "UTC").is_err());
        assert!(Schedule::new(2, 24, "UTC").is_err());
        assert!(Schedule::new(2, 8, "Mars/Olympus").is_err());
    }
}
