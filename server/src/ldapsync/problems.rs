//! A run's problems: aggregated for the run record, new ones recorded in
//! `idpsync_problems` (source `ldap_sync`), and the recorded ones a full run
//! no longer meets deleted (the directory or the settings were fixed).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use super::AUDIT_SOURCE;
use crate::store::{self, Conn, Write};

pub(super) use crate::store::problems::ProblemKey;

/// At most this many problems are kept in a run's record.
const PROBLEMS_KEEP: usize = 500;

/// The stored problems of directory runs: key -> row ids.
pub(super) async fn load_keys(conn: &mut Conn) -> sqlx::Result<HashMap<ProblemKey, Vec<String>>> {
    store::problems::keys_of_source(conn, AUDIT_SOURCE).await
}

/// Records `rows` as problems of directory runs.
pub(super) async fn insert_rows(
    w: &mut Write<'_>,
    rows: &[ProblemKey],
    now: &str,
) -> sqlx::Result<()> {
    for (org, user, kind, detail) in rows {
        store::problems::insert(
            w,
            org.as_deref(),
            user.as_deref(),
            AUDIT_SOURCE,
            kind,
            detail,
            now,
        )
        .await?;
    }
    Ok(())
}

/// A run's problems: all of them for the run record (aggregated, capped), the
/// ones not recorded before for `idpsync_problems`, and the recorded ones it
/// did not meet again (a full run deletes those: the directory or the settings
/// were fixed).
pub(super) struct ProblemSet {
    /// Stored problems not met (yet) by this run: key -> row ids.
    recorded: HashMap<ProblemKey, Vec<String>>,
    /// Stored problems this run met again.
    met_again: HashSet<ProblemKey>,
    new: Vec<ProblemKey>,
    new_keys: HashSet<ProblemKey>,
    /// (org, kind, detail) -> count, in first-seen order.
    summary: BTreeMap<(Option<String>, String, String), usize>,
    total: usize,
}

impl ProblemSet {
    pub(super) fn new(recorded: HashMap<ProblemKey, Vec<String>>) -> Self {
        Self {
            recorded,
            met_again: HashSet::new(),
            new: Vec::new(),
            new_keys: HashSet::new(),
            summary: BTreeMap::new(),
            total: 0,
        }
    }

    pub(super) fn add(&mut self, org: Option<&str>, user: Option<&str>, kind: &str, detail: &str) {
        let key: ProblemKey = (
            org.map(str::to_owned),
            user.map(str::to_owned),
            kind.to_owned(),
            detail.to_owned(),
        );
        *self
            .summary
            .entry((key.0.clone(), key.2.clone(), key.3.clone()))
            .or_default() += 1;
        self.total += 1;
        if self.recorded.remove(&key).is_some() {
            self.met_again.insert(key);
        } else if !self.met_again.contains(&key) && self.new_keys.insert(key.clone()) {
            self.new.push(key);
        }
    }

    /// Row ids of the stored problems this run did not meet.
    pub(super) fn stale_ids(&self) -> Vec<String> {
        self.recorded.values().flatten().cloned().collect()
    }

    pub(super) fn len(&self) -> usize {
        self.summary.len()
    }

    pub(super) fn kept(&self) -> Vec<Value> {
        self.summary
            .iter()
            .take(PROBLEMS_KEEP)
            .map(|((org, kind, detail), n)| {
                json!({"organization_id": org, "kind": kind, "detail": detail, "count": n})
            })
            .collect()
    }

    pub(super) fn new_rows(&self) -> Vec<ProblemKey> {
        self.new.clone()
    }
}
