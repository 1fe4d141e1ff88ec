//! Times as people read them: relative ("5 minutes ago"), with the full UTC
//! time on hover (`<time title=...>`).

use std::fmt;

use chrono::{DateTime, Utc};

/// A time of the database (RFC 3339) rendered as a `<time>` element, relative
/// to `now`. Its `Display` writes the element (escape-free: it writes only
/// digits, letters and punctuation of its own formats).
#[derive(Debug, Clone)]
pub struct When {
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl When {
    pub fn new(at: &str, now: DateTime<Utc>) -> When {
        When {
            at: crate::clock::parse(at),
            now,
        }
    }

    pub fn maybe(at: Option<&str>, now: DateTime<Utc>) -> When {
        When {
            at: at.and_then(crate::clock::parse),
            now,
        }
    }

    /// "just now", "5 minutes ago", "in 2 hours", "3 days ago".
    pub fn relative(&self) -> String {
        let Some(at) = self.at else {
            return "never".to_owned();
        };
        let secs = (self.now - at).num_seconds();
        let (n, future) = (secs.unsigned_abs(), secs < 0);
        let (count, unit) = match n {
            0..45 => return "just now".to_owned(),
            45..3600 => (n.div_ceil(60).max(1), "minute"),
            3600..86_400 => (n / 3600, "hour"),
            86_400..2_592_000 => (n / 86_400, "day"),
            2_592_000..31_536_000 => (n / 2_592_000, "month"),
            _ => (n / 31_536_000, "year"),
        };
        let plural = if count == 1 { "" } else { "s" };
        if future {
            format!("in {count} {unit}{plural}")
        } else {
            format!("{count} {unit}{plural} ago")
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(
                f,
                "<time datetime=\"{}\" title=\"{}\">{}</time>",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                self.relative()
            ),
            None => f.write_str("never"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_relative_with_the_full_time_on_hover() {
        let now = crate::clock::parse("2026-03-01T12:00:00Z").unwrap_or_default();
        let w = |s: &str| When::new(s, now).relative();
        assert_eq!(w("2026-03-01T11:59:50Z"), "just now");
        assert_eq!(w("2026-03-01T11:55:00Z"), "5 minutes ago");
        assert_eq!(w("2026-03-01T11:59:00Z"), "1 minute ago");
        assert_eq!(w("2026-03-01T09:00:00Z"), "3 hours ago");
        assert_eq!(w("2026-02-27T12:00:00Z"), "2 days ago");
        assert_eq!(w("2026-03-01T14:00:00Z"), "in 2 hours");
        assert_eq!(When::maybe(None, now).relative(), "never");
        assert_eq!(
            When::new("2026-03-01T11:55:00Z", now).to_string(),
            "<time datetime=\"2026-03-01T11:55:00Z\" title=\"2026-03-01 11:55:00 UTC\">5 minutes \
             ago</time>"
        );
    }
}
