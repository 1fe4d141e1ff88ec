//! Long lists in pages: `?page=N` (from 1) and the **Previous** / **Next**
//! links under the list.

use serde::Deserialize;

use crate::usecase::Page;

/// Items per page of a console list.
pub const PAGE_SIZE: i64 = 50;

/// The `?page=` of a list; anything but a number from 1 is the first page.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<String>,
}

impl PageQuery {
    /// The page number, from 1 (capped so the offset stays far from overflow).
    pub fn number(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse::<i64>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(1)
            .min(1_000_000)
    }

    /// The use case's page: this page's items and `extra` more (one more
    /// tells whether a next page exists).
    pub fn usecase(&self, extra: i64) -> Page {
        Page {
            limit: Some(PAGE_SIZE + extra),
            offset: Some((self.number() - 1) * PAGE_SIZE),
        }
    }
}

/// The links under a list; empty when everything fits on one page.
#[derive(Debug, Clone, Default)]
pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
    /// "51–100 of 10,000" or "Page 2".
    pub summary: String,
}

impl Pager {
    /// Page `number` of the list at `base` (a path without a query) showing
    /// `shown` items; `total` when known, else `has_next` says whether more
    /// follow.
    pub fn new(base: &str, number: i64, shown: usize, has_next: bool, total: Option<i64>) -> Pager {
        let link = |n: i64| {
            if n == 1 {
                base.to_owned()
            } else {
                format!("{base}?page={n}")
            }
        };
        let first = (number - 1) * PAGE_SIZE;
        let has_next = match total {
            Some(t) => first + (shown as i64) < t,
            None => has_next,
        };
        let summary = match (total, shown) {
            (Some(t), 0) => format!("{} in all", group(t)),
            (Some(t), n) => format!(
                "{}–{} of {}",
                group(first + 1),
                group(first + n as i64),
                group(t)
            ),
            (None, _) => format!("Page {number}"),
        };
        Pager {
            prev: (number > 1).then(|| link(number - 1)),
            next: has_next.then(|| link(number + 1)),
            summary,
        }
    }

    /// Whether there is another page to go to.
    pub fn shown(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }
}

/// `10000` as `10,000`.
fn group(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(p: &str) -> PageQuery {
        PageQuery {
            page: Some(p.to_owned()),
        }
    }

    #[test]
    fn page_numbers_are_lenient() {
        assert_eq!(PageQuery::default().number(), 1);
        assert_eq!(q("3").number(), 3);
        assert_eq!(q("0").number(), 1);
        assert_eq!(q("-2").number(), 1);
        assert_eq!(q("x").number(), 1);
        assert_eq!(q("99999999999").number(), 1_000_000);
        let p = q("3").usecase(1);
        assert_eq!((p.limit, p.offset), (Some(51), Some(100)));
    }

    #[test]
    fn links_follow_the_position() {
        let p = Pager::new("/m", 1, 50, false, Some(120));
        assert_eq!((p.prev, p.next.as_deref()), (None, Some("/m?page=2")));
        assert_eq!(p.summary, "1–50 of 120");
        let p = Pager::new("/m", 3, 20, false, Some(120));
        assert_eq!((p.prev.as_deref(), p.next), (Some("/m?page=2"), None));
        let p = Pager::new("/m", 2, 50, true, None);
        assert_eq!(p.prev.as_deref(), Some("/m"));
        assert_eq!(p.next.as_deref(), Some("/m?page=3"));
        assert!(!Pager::new("/m", 1, 10, false, Some(10)).shown());
        assert_eq!(group(10_000), "10,000");
        assert_eq!(group(999), "999");
    }
}
