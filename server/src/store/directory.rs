//! What a directory sync run reads in bulk (the directory links, the known
//! users, everyone's memberships) and its few writes of its own (profiles,
//! suspension by the sync). The multi-row inserts a batch is applied with sit
//! in the modules of their tables, next to the single-row writes.

use sqlx::Row;

use super::Conn;
pub(crate) use super::bulk::placeholders;
pub use super::bulk::{Arg, ArgRow, IDS_PER_STATEMENT};

// ---- Users ----

/// A directory user's email and name, as the directory says.
pub async fn update_profile(
    tx: &mut Conn,
    user_id: &str,
    email: &str,
    name: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET email = $2, email_lower = $3, name = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(user_id)
    .bind(email)
    .bind(email.to_lowercase())
    .bind(name)
    .bind(now)
    .execute(tx)
    .await
    .map(|_| ())
}

/// Bumps the authorization version of `ids` (their cached principals are
/// stale), [`IDS_PER_STATEMENT`] at a time.
pub async fn bump_authz_versions(tx: &mut Conn, ids: &[String]) -> sqlx::Result<()> {
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE users SET authz_version = authz_version + 1 WHERE id IN ({})",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// One user as a run matches directory entries against it.
pub struct UserProfile {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub login_type: String,
}

/// Every user's profile, streamed to `f`.
pub async fn for_each_user(conn: &mut Conn, mut f: impl FnMut(UserProfile)) -> sqlx::Result<()> {
    use futures_util::TryStreamExt as _;
    let mut rows =
        sqlx::query("SELECT id, username, email, name, status, login_type FROM users").fetch(conn);
    while let Some(r) = rows.try_next().await? {
        f(UserProfile {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            status: r.try_get("status")?,
            login_type: r.try_get("login_type")?,
        });
    }
    Ok(())
}

// ---- Memberships ----

/// Every organization membership, streamed to `f(user, organization, roles
/// as JSON text)`.
pub async fn for_each_org_membership(
    conn: &mut Conn,
    mut f: impl FnMut(String, String, String),
) -> sqlx::Result<()> {
    use futures_util::TryStreamExt as _;
    let mut rows =
        sqlx::query("SELECT user_id, organization_id, roles FROM organization_members").fetch(conn);
    while let Some(r) = rows.try_next().await? {
        f(
            r.try_get("user_id")?,
            r.try_get("organization_id")?,
            r.try_get("roles")?,
        );
    }
    Ok(())
}

/// Every membership of a group other than an Everyone group, streamed to
/// `f(user, group)`.
pub async fn for_each_group_membership(
    conn: &mut Conn,
    mut f: impl FnMut(String, String),
) -> sqlx::Result<()> {
    use futures_util::TryStreamExt as _;
    let mut rows = sqlx::query(
        "SELECT m.user_id, m.group_id FROM group_members m JOIN groups g ON g.id = m.group_id \
         WHERE g.id <> g.organization_id",
    )
    .fetch(conn);
    while let Some(r) = rows.try_next().await? {
        f(r.try_get("user_id")?, r.try_get("group_id")?);
    }
    Ok(())
}

/// Every user's site roles, streamed to `f(user, roles as JSON text)`.
pub async fn for_each_site_roles(
    conn: &mut Conn,
    mut f: impl FnMut(String, String),
) -> sqlx::Result<()> {
    use futures_util::TryStreamExt as _;
    let mut rows = sqlx::query("SELECT id, roles FROM users").fetch(conn);
    while let Some(r) = rows.try_next().await? {
        f(r.try_get("id")?, r.try_get("roles")?);
    }
    Ok(())
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

pub struct MembershipRow {
    pub kind: MembershipKind,
    pub user_id: String,
    pub item: String,
    /// JSON list of role names.
    pub roles: String,
}

/// The memberships of `ids`: one query per [`IDS_PER_STATEMENT`] ids. Users
/// without any row get none.
pub async fn memberships_of(conn: &mut Conn, ids: &[&str]) -> sqlx::Result<Vec<MembershipRow>> {
    let mut out = Vec::new();
    for ids in ids.chunks(IDS_PER_STATEMENT) {
        let marks = placeholders(ids.len());
        // Only placeholders reach the SQL text; each id is bound once and
        // used by the three parts.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 'o' AS kind, user_id, organization_id AS item, roles FROM organization_members \
             WHERE user_id IN ({marks}) \
             UNION ALL SELECT 'g' AS kind, m.user_id, m.group_id AS item, '[]' AS roles \
             FROM group_members m JOIN groups g ON g.id = m.group_id \
             WHERE g.id <> g.organization_id AND m.user_id IN ({marks}) \
             UNION ALL SELECT 's' AS kind, id AS user_id, '' AS item, roles FROM users WHERE id IN ({marks})"
        )));
        for id in ids {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let kind: String = r.try_get("kind")?;
            out.push(MembershipRow {
                kind: match kind.as_str() {
                    "o" => MembershipKind::Org,
                    "g" => MembershipKind::Group,
                    _ => MembershipKind::Site,
                },
                user_id: r.try_get("user_id")?,
                item: r.try_get("item")?,
                roles: r.try_get("roles")?,
            });
        }
    }
    Ok(out)
}

/// Active users linked to `source`, and their organization + group
/// memberships (the base of the removal guard).
pub async fn linked_counts(conn: &mut Conn, source: &str) -> sqlx::Result<(usize, usize)> {
    let users = count_linked(
        conn,
        source,
        "users x ON x.id = l.user_id AND x.status <> 'suspended'",
    )
    .await?;
    let orgs = count_linked(
        conn,
        source,
        "organization_members x ON x.user_id = l.user_id",
    )
    .await?;
    let groups = count_linked(conn, source, "group_members x ON x.user_id = l.user_id").await?;
    Ok((users, orgs + groups))
}

/// Counts the rows of `join` (`table x ON ...`) of users linked to `source`.
async fn count_linked(conn: &mut Conn, source: &str, join: &'static str) -> sqlx::Result<usize> {
    // `join` is one of the constants above: no input reaches the SQL text.
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM user_links l JOIN {join} WHERE l.source = $1"
    )))
    .bind(source)
    .fetch_one(conn)
    .await?
    .try_get("n")?;
    Ok(usize::try_from(n).unwrap_or(0))
}

// ---- Links ----

/// One link of a source.
pub struct LinkRow {
    pub user_id: String,
    pub external_id: String,
    /// The stored claims (JSON text).
    pub claims: String,
    pub suspended_by_sync: bool,
}

/// Every link of `source`, streamed to `f`.
pub async fn for_each_link(
    conn: &mut Conn,
    source: &str,
    mut f: impl FnMut(LinkRow),
) -> sqlx::Result<()> {
    use futures_util::TryStreamExt as _;
    let mut rows = sqlx::query(
        "SELECT user_id, external_id, claims, suspended_by_sync FROM user_links WHERE source = $1",
    )
    .bind(source)
    .fetch(conn);
    while let Some(r) = rows.try_next().await? {
        f(LinkRow {
            user_id: r.try_get("user_id")?,
            external_id: r.try_get("external_id")?,
            claims: r.try_get("claims")?,
            suspended_by_sync: r.try_get::<i64, _>("suspended_by_sync")? != 0,
        });
    }
    Ok(())
}

/// The external id of `user_id`'s link of `source`, if any.
pub async fn link_external_id(
    tx: &mut Conn,
    user_id: &str,
    source: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query("SELECT external_id FROM user_links WHERE user_id = $1 AND source = $2")
        .bind(user_id)
        .bind(source)
        .fetch_optional(tx)
        .await?
        .map(|r| r.try_get("external_id"))
        .transpose()
}

/// Deletes `user_id`'s link of `source`.
pub async fn delete_link(tx: &mut Conn, user_id: &str, source: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM user_links WHERE user_id = $1 AND source = $2")
        .bind(user_id)
        .bind(source)
        .execute(tx)
        .await
        .map(|_| ())
}

/// Marks whether the sync of `source` suspended `user_id` (so that it may
/// reactivate the account when it is back).
pub async fn set_suspended_by_sync(
    tx: &mut Conn,
    user_id: &str,
    source: &str,
    suspended: bool,
) -> sqlx::Result<()> {
    // Literal 0/1 as before: the column is a BIGINT flag.
    let sql = if suspended {
        "UPDATE user_links SET suspended_by_sync = 1 WHERE user_id = $1 AND source = $2"
    } else {
        "UPDATE user_links SET suspended_by_sync = 0 WHERE user_id = $1 AND source = $2"
    };
    sqlx::query(sql)
        .bind(user_id)
        .bind(source)
        .execute(tx)
        .await
        .map(|_| ())
}

/// The stored claims (JSON text) of every link, of every source.
pub async fn all_link_claims(conn: &mut Conn) -> sqlx::Result<Vec<String>> {
    sqlx::query("SELECT claims FROM user_links")
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| r.try_get("claims"))
        .collect()
}

// ---- Audit ----
