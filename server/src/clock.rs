//! Time as the rest of the code sees it: passed in, formatted one way.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way it is stored and served: RFC 3339 UTC with
/// microseconds, fixed width, so stored times sort as text.
pub fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored or user-supplied RFC 3339 time.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The current time. Handlers read it once per use case and pass it down.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_sort_as_text() {
        let a = parse("2026-01-02T03:04:05Z").map(fmt);
        let b = parse("2026-01-02T03:04:05.5Z").map(fmt);
        assert_eq!(a.as_deref(), Some("2026-01-02T03:04:05.000000Z"));
        assert!(a < b);
    }
}
