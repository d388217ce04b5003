//! Time as data: a [`Deadline`] bounds every wait (SPEC 6, 8). The core never reads a clock;
//! the driver passes `now` in.

use std::time::{Duration, SystemTime};

/// An RFC 3339 UTC time as AWS writes event times (`2026-11-27T10:00:00Z`, fractions of a
/// second allowed) as a [`SystemTime`]; `None` for anything else.
pub fn parse_utc(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let rest = &text[19..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(f) => {
            let end = f.find(|c: char| !c.is_ascii_digit())?;
            if end == 0 {
                return None;
            }
            (&f[..end], &f[end..])
        }
        None => ("", rest),
    };
    if zone != "Z"
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || year < 1970
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), for years from 1970.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    let nanos = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect::<String>()
        .parse::<u32>()
        .ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

/// The shortest interval between two polls of anything: a zero interval must neither spin nor
/// hammer a table or an API.
pub const MIN_POLL: Duration = Duration::from_millis(100);

/// The latest moment by which an invocation must have finished (a Lambda's deadline less a
/// safety margin), or none (the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline {
    at: Option<SystemTime>,
}

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline { at: None };

    /// A deadline at `at`.
    pub fn at(at: SystemTime) -> Self {
        Deadline { at: Some(at) }
    }

    /// The moment, if any.
    pub fn instant(&self) -> Option<SystemTime> {
        self.at
    }

    /// True once `now` is at or past the deadline.
    pub fn passed(&self, now: SystemTime) -> bool {
        self.at.is_some_and(|at| now >= at)
    }

    /// True when the deadline comes before `now + limit`: a wait bounded by both ends at the
    /// deadline.
    pub fn cuts(&self, now: SystemTime, limit: Duration) -> bool {
        self.at.is_some_and(|at| at < now + limit)
    }

    /// The earlier of this deadline and `now + limit`.
    pub fn min_with(&self, now: SystemTime, limit: Duration) -> SystemTime {
        let by_limit = now + limit;
        match self.at {
            Some(at) if at < by_limit => at,
            _ => by_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_event_times_parse() {
        let t = parse_utc("2026-11-27T10:00:00Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_795_773_600
        );
        assert_eq!(
            parse_utc("1970-01-01T00:00:01.5Z").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500)
        );
        assert_eq!(
            parse_utc("2024-02-29T23:59:59Z")
                .unwrap()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_709_251_199
        );
        for bad in [
            "",
            "2026-11-27",
            "2026-11-27T10:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "20x6-11-27T10:00:00Z",
            "2026-11-27T10:00:00.Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
