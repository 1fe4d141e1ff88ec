//! Users (accounts).

use sqlx::Result;

use super::query::{
    Text, all, execute, execute_in, optional, page, read_as, scalar, scalar_optional, sql,
};
use super::{Conn, Write, to_json_list};
use crate::model::{LoginType, Organization, User, UserStatus};

const USER_COLUMNS: &str = "id, username, email, name, avatar_url, status, login_type, roles, \
    created_at, updated_at, last_seen_at";

/// A user's `roles` column as read: its explicit site roles, and the implicit
/// `member` first when not stored.
pub struct SiteRoles(Vec<String>);

read_as!(SiteRoles, Text, |text: Text| {
    let mut roles: Vec<String> = text.json();
    if !roles.iter().any(|r| r == "member") {
        roles.insert(0, "member".to_owned());
    }
    SiteRoles(roles)
});

impl From<SiteRoles> for Vec<String> {
    fn from(roles: SiteRoles) -> Vec<String> {
        roles.0
    }
}

/// Explicit site roles (without the implicit `member`).
pub fn explicit_roles(user: &User) -> Vec<String> {
    user.roles
        .iter()
        .filter(|r| *r != "member")
        .cloned()
        .collect()
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub login_type: LoginType,
    pub password_hash: Option<&'a str>,
    pub roles: &'a [String],
    pub now: &'a str,
}

pub async fn insert(w: &mut Write<'_>, u: &NewUser<'_>) -> Result<()> {
    let sql = "INSERT INTO users (id, username, username_lower, email, email_lower, name, avatar_url, \
         status, login_type, password_hash, roles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '', 'active', $7, $8, $9, $10, $10)";
    let args = (
        u.id,
        u.username,
        u.username.to_lowercase(),
        u.email,
        u.email.to_lowercase(),
        u.name,
        u.login_type.as_str(),
        u.password_hash,
        to_json_list(u.roles),
        u.now,
    );
    execute(w, sql, args).await
}

/// Whether any user exists (cheaper than a count on a large deployment).
pub async fn any(conn: &mut Conn) -> Result<bool> {
    let one: Option<i64> = scalar_optional(conn, "SELECT 1 FROM users LIMIT 1", ()).await?;
    Ok(one.is_some())
}

pub async fn count(conn: &mut Conn) -> Result<i64> {
    scalar(conn, "SELECT COUNT(*) FROM users", ()).await
}

/// Finds a user by id or (case-insensitive) username.
pub async fn find(conn: &mut Conn, key: &str) -> Result<Option<User>> {
    let sql = sql!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR username_lower = $2");
    optional(conn, sql, (key, key.to_lowercase())).await
}

/// A user by id, username or email (case-insensitive): what a person types
/// to name someone (add a member, add to a group).
pub async fn find_by_handle(conn: &mut Conn, key: &str) -> Result<Option<User>> {
    let sql = sql!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR username_lower = $2 OR email_lower = $2"
    );
    optional(conn, sql, (key, key.to_lowercase())).await
}

pub async fn find_by_id(conn: &mut Conn, id: &str) -> Result<Option<User>> {
    optional(
        conn,
        sql!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
        (id,),
    )
    .await
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    #[sqlx(flatten)]
    user: User,
    password_hash: Option<String>,
}

/// The user and password hash for a login by email.
pub async fn find_for_login(
    conn: &mut Conn,
    email: &str,
) -> Result<Option<(User, Option<String>)>> {
    let sql = sql!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email_lower = $1");
    let row: Option<LoginRow> = optional(conn, sql, (email.to_lowercase(),)).await?;
    Ok(row.map(|r| (r.user, r.password_hash)))
}

pub struct UserFilter<'a> {
    pub search: Option<&'a str>,
    pub status: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// `text` as a LIKE pattern matching itself literally: `\`, `%` and `_`
/// escaped with `\` (the statement says `ESCAPE '\'`, on both databases).
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Users, newest first, with the total count of matches. `search` matches a
/// substring of the username or email, literally (`%` and `_` are no
/// wildcards), case-insensitively.
pub async fn list(conn: &mut Conn, f: &UserFilter<'_>) -> Result<(Vec<User>, i64)> {
    let search = f
        .search
        .map(|s| format!("%{}%", like_literal(&s.to_lowercase())));
    let from = "users WHERE ($1 IS NULL OR username_lower LIKE $1 ESCAPE '\\' \
                OR email_lower LIKE $1 ESCAPE '\\') AND ($2 IS NULL OR status = $2)";
    let order = "created_at DESC, id DESC";
    let args = (search.as_deref(), f.status);
    page(conn, USER_COLUMNS, from, order, args, (f.limit, f.offset)).await
}

pub async fn update_profile(
    w: &mut Write<'_>,
    id: &str,
    username: &str,
    email: &str,
    name: &str,
    avatar_url: &str,
    now: &str,
) -> Result<()> {
    let sql = "UPDATE users SET username = $1, username_lower = $2, email = $3, email_lower = $4, \
         name = $5, avatar_url = $6, updated_at = $7 WHERE id = $8";
    let args = (
        username,
        username.to_lowercase(),
        email,
        email.to_lowercase(),
        name,
        avatar_url,
        now,
        id,
    );
    execute(w, sql, args).await
}

/// Marks users' authorization data as changed (their cached slices are stale
/// on every replica). Called by every store function that changes that data.
pub async fn bump_authz(w: &mut Write<'_>, ids: &[&str]) -> Result<()> {
    let sql = "UPDATE users SET authz_version = authz_version + 1 WHERE id IN ({ids})";
    execute_in(w, sql, ids).await.map(|_| ())
}

/// The current authorization version of a user.
pub async fn authz_version(conn: &mut Conn, id: &str) -> Result<Option<i64>> {
    scalar_optional(conn, "SELECT authz_version FROM users WHERE id = $1", (id,)).await
}

pub async fn set_status(w: &mut Write<'_>, id: &str, status: UserStatus, now: &str) -> Result<()> {
    let sql = "UPDATE users SET status = $2, updated_at = $3, authz_version = authz_version + 1 \
         WHERE id = $1";
    execute(w, sql, (id, status.as_str(), now)).await
}

pub async fn set_roles(w: &mut Write<'_>, id: &str, roles: &[String], now: &str) -> Result<()> {
    let sql = "UPDATE users SET roles = $2, updated_at = $3, authz_version = authz_version + 1 \
         WHERE id = $1";
    execute(w, sql, (id, to_json_list(roles), now)).await
}

pub async fn set_password_hash(w: &mut Write<'_>, id: &str, hash: &str, now: &str) -> Result<()> {
    let sql = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
    execute(w, sql, (id, hash, now)).await
}

/// Sets how the user signs in; a `password` hash only for `password` users.
pub async fn set_login(
    w: &mut Write<'_>,
    id: &str,
    login_type: LoginType,
    password_hash: Option<&str>,
    now: &str,
) -> Result<()> {
    let sql = "UPDATE users SET login_type = $2, password_hash = $3, updated_at = $4 WHERE id = $1";
    let args = (id, login_type.as_str(), password_hash, now);
    execute(w, sql, args).await
}

pub async fn touch_last_seen(w: &mut Write<'_>, id: &str, now: &str) -> Result<()> {
    let sql = "UPDATE users SET last_seen_at = $2 WHERE id = $1";
    execute(w, sql, (id, now)).await
}

pub async fn delete(w: &mut Write<'_>, id: &str) -> Result<()> {
    execute(w, "DELETE FROM users WHERE id = $1", (id,)).await
}

/// The organizations a user is a member of, by name.
pub async fn organizations(conn: &mut Conn, user_id: &str) -> Result<Vec<Organization>> {
    let columns = super::orgs::ORG_COLUMNS_O;
    let sql = sql!(
        "SELECT {columns} FROM organizations o JOIN organization_members m \
         ON m.organization_id = o.id WHERE m.user_id = $1 ORDER BY o.name"
    );
    all(conn, sql, (user_id,)).await
}

/// Marks `user_id` as the deployment's first user. A unique key: of two racing
/// first users, one insert fails.
pub async fn mark_first_user(w: &mut Write<'_>, user_id: &str, now: &str) -> Result<()> {
    let sql = "INSERT INTO deployment_settings (key, value, updated_at) \
         VALUES ('first_user_id', $1, $2)";
    execute(w, sql, (user_id, now)).await
}

/// New users: (id, username, username_lower, email, email_lower, name,
/// avatar_url, status, login_type, password_hash, roles, created_at,
/// updated_at, authz_version) each.
pub async fn insert_many(w: &mut Write<'_>, rows: Vec<super::bulk::ArgRow>) -> Result<()> {
    let head = "users (id, username, username_lower, email, email_lower, name, avatar_url, \
        status, login_type, password_hash, roles, created_at, updated_at, authz_version)";
    super::bulk::insert_rows(w, head, "", rows).await
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_literal("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(like_literal("plain"), "plain");
    }
}
