//! What a directory sync run reads in bulk (the directory links, the known
//! users, everyone's memberships) and its few writes of its own (profiles,
//! suspension by the sync). The multi-row inserts a batch is applied with sit
//! in the modules of their tables, next to the single-row writes.

use sqlx::Result;

pub use super::bulk::{Arg, ArgRow, IDS_PER_STATEMENT};
use super::query::{Text, all_in, execute, for_each, scalar};
use super::{Conn, Write};

// ---- Users ----

/// A directory user's email and name, as the directory says.
pub async fn update_profile(
    w: &mut Write<'_>,
    user_id: &str,
    email: &str,
    name: &str,
    now: &str,
) -> Result<()> {
    let sql = "UPDATE users SET email = $2, email_lower = $3, name = $4, updated_at = $5 \
         WHERE id = $1";
    let args = (user_id, email, email.to_lowercase(), name, now);
    execute(w, sql, args).await
}

/// One user as a run matches directory entries against it.
#[derive(sqlx::FromRow)]
pub struct UserProfile {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub login_type: String,
}

/// Every user's profile, streamed to `f`.
pub async fn for_each_user(conn: &mut Conn, f: impl FnMut(UserProfile) + Send) -> Result<()> {
    let sql = "SELECT id, username, email, name, status, login_type FROM users";
    for_each(conn, sql, (), f).await
}

// ---- Memberships ----

/// Every organization membership, streamed to `f(user, organization, roles
/// as JSON text)`.
pub async fn for_each_org_membership(
    conn: &mut Conn,
    mut f: impl FnMut(String, String, String) + Send,
) -> Result<()> {
    let sql = "SELECT user_id, organization_id, roles FROM organization_members";
    for_each(conn, sql, (), |(user, org, roles)| f(user, org, roles)).await
}

/// Every membership of a group other than an Everyone group, streamed to
/// `f(user, group)`.
pub async fn for_each_group_membership(
    conn: &mut Conn,
    mut f: impl FnMut(String, String) + Send,
) -> Result<()> {
    let sql = "SELECT m.user_id, m.group_id FROM group_members m JOIN groups g \
         ON g.id = m.group_id WHERE g.id <> g.organization_id";
    for_each(conn, sql, (), |(user, group)| f(user, group)).await
}

/// Every user's site roles, streamed to `f(user, roles as JSON text)`.
pub async fn for_each_site_roles(
    conn: &mut Conn,
    mut f: impl FnMut(String, String) + Send,
) -> Result<()> {
    let sql = "SELECT id, roles FROM users";
    for_each(conn, sql, (), |(user, roles)| f(user, roles)).await
}

/// What a membership row of [`memberships_of`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipKind {
    /// `item` is an organization, `roles` its roles.
    Org,
    /// `item` is a group (not an Everyone group).
    Group,
    /// `roles` are the site roles.
    Site,
}

impl From<Text> for MembershipKind {
    fn from(kind: Text) -> MembershipKind {
        match kind.as_str() {
            "o" => MembershipKind::Org,
            "g" => MembershipKind::Group,
            _ => MembershipKind::Site,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct MembershipRow {
    #[sqlx(try_from = "Text")]
    pub kind: MembershipKind,
    pub user_id: String,
    pub item: String,
    /// JSON list of role names.
    pub roles: String,
}

/// The memberships of `ids`: one query per [`IDS_PER_STATEMENT`] ids. Users
/// without any row get none.
pub async fn memberships_of(conn: &mut Conn, ids: &[&str]) -> Result<Vec<MembershipRow>> {
    let sql = "SELECT 'o' AS kind, user_id, organization_id AS item, roles \
         FROM organization_members WHERE user_id IN ({ids}) \
         UNION ALL SELECT 'g' AS kind, m.user_id, m.group_id AS item, '[]' AS roles \
         FROM group_members m JOIN groups g ON g.id = m.group_id \
         WHERE g.id <> g.organization_id AND m.user_id IN ({ids}) \
         UNION ALL SELECT 's' AS kind, id AS user_id, '' AS item, roles FROM users \
         WHERE id IN ({ids})";
    all_in(conn, sql, ids).await
}

/// Active users linked to `source`, and their organization + group
/// memberships (the base of the removal guard).
pub async fn linked_counts(conn: &mut Conn, source: &str) -> Result<(usize, usize)> {
    let users = "users x ON x.id = l.user_id AND x.status <> 'suspended'";
    let users = count_linked(conn, source, users).await?;
    let orgs = "organization_members x ON x.user_id = l.user_id";
    let orgs = count_linked(conn, source, orgs).await?;
    let groups = count_linked(conn, source, "group_members x ON x.user_id = l.user_id").await?;
    Ok((users, orgs + groups))
}

/// Counts the rows of `join` (`table x ON ...`) of users linked to `source`.
async fn count_linked(conn: &mut Conn, source: &str, join: &'static str) -> Result<usize> {
    // `join` is one of the constants above: no input reaches the SQL text.
    let sql =
        super::query::sql!("SELECT COUNT(*) FROM user_links l JOIN {join} WHERE l.source = $1");
    let n: i64 = scalar(conn, sql, (source,)).await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

// ---- Links ----

/// One link of a source.
#[derive(sqlx::FromRow)]
pub struct LinkRow {
    pub user_id: String,
    pub external_id: String,
    /// The stored claims (JSON text).
    pub claims: String,
    #[sqlx(try_from = "super::Flag")]
    pub suspended_by_sync: bool,
}

/// Every link of `source`, streamed to `f`.
pub async fn for_each_link(
    conn: &mut Conn,
    source: &str,
    f: impl FnMut(LinkRow) + Send,
) -> Result<()> {
    let sql = "SELECT user_id, external_id, claims, suspended_by_sync FROM user_links \
         WHERE source = $1";
    for_each(conn, sql, (source,), f).await
}

/// Deletes `user_id`'s link of `source`.
pub async fn delete_link(w: &mut Write<'_>, user_id: &str, source: &str) -> Result<()> {
    let sql = "DELETE FROM user_links WHERE user_id = $1 AND source = $2";
    execute(w, sql, (user_id, source)).await
}

/// Marks whether the sync of `source` suspended `user_id` (so that it may
/// reactivate the account when it is back).
pub async fn set_suspended_by_sync(
    w: &mut Write<'_>,
    user_id: &str,
    source: &str,
    suspended: bool,
) -> Result<()> {
    let sql = "UPDATE user_links SET suspended_by_sync = $3 WHERE user_id = $1 AND source = $2";
    execute(w, sql, (user_id, source, crate::db::flag(suspended))).await
}

/// The stored claims (JSON text) of every link, of every source.
pub async fn all_link_claims(conn: &mut Conn) -> Result<Vec<String>> {
    super::query::scalars(conn, "SELECT claims FROM user_links", ()).await
}
