use sqlx::Row;

use super::{Conn, json_list, to_json_list};
use crate::model::{LoginType, Organization, User, UserStatus};

const USER_COLUMNS: &str = "id, username, email, name, avatar_url, status, login_type, roles, \
    created_at, updated_at, last_seen_at";

pub(crate) fn user_from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<User> {
    let mut roles = json_list(&row.try_get::<String, _>("roles")?);
    if !roles.iter().any(|r| r == "member") {
        roles.insert(0, "member".to_owned());
    }
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        avatar_url: row.try_get("avatar_url")?,
        status: UserStatus::parse(&row.try_get::<String, _>("status")?),
        login_type: LoginType::parse(&row.try_get::<String, _>("login_type")?),
        roles,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
    })
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

pub async fn insert(conn: &mut Conn, u: &NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, username_lower, email, email_lower, name, avatar_url, \
         status, login_type, password_hash, roles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '', 'active', $7, $8, $9, $10, $10)",
    )
    .bind(u.id)
    .bind(u.username)
    .bind(u.username.to_lowercase())
    .bind(u.email)
    .bind(u.email.to_lowercase())
    .bind(u.name)
    .bind(u.login_type.as_str())
    .bind(u.password_hash)
    .bind(to_json_list(u.roles))
    .bind(u.now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Whether any user exists (cheaper than a count on a large deployment).
pub async fn any(conn: &mut Conn) -> sqlx::Result<bool> {
    Ok(sqlx::query("SELECT 1 AS one FROM users LIMIT 1")
        .fetch_optional(conn)
        .await?
        .is_some())
}

pub async fn count(conn: &mut Conn) -> sqlx::Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(conn)
        .await?
        .try_get("n")
}

/// Finds a user by id or (case-insensitive) username.
pub async fn find(conn: &mut Conn, key: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR username_lower = $2"
    )))
    .bind(key)
    .bind(key.to_lowercase())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_by_id(conn: &mut Conn, id: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The user and password hash for a login by email.
pub async fn find_for_login(
    conn: &mut Conn,
    email: &str,
) -> sqlx::Result<Option<(User, Option<String>)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email_lower = $1"
    )))
    .bind(email.to_lowercase())
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
        None => Ok(None),
    }
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
pub async fn list(conn: &mut Conn, f: &UserFilter<'_>) -> sqlx::Result<(Vec<User>, i64)> {
    let search = f
        .search
        .map(|s| format!("%{}%", like_literal(&s.to_lowercase())));
    let where_ = "WHERE ($1 IS NULL OR username_lower LIKE $1 ESCAPE '\\' OR email_lower LIKE $1 ESCAPE '\\') \
                  AND ($2 IS NULL OR status = $2)";
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM users {where_}"
    )))
    .bind(search.as_deref())
    .bind(f.status)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users {where_} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(search.as_deref())
    .bind(f.status)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(conn)
    .await?;
    let users = rows
        .iter()
        .map(user_from_row)
        .collect::<sqlx::Result<Vec<_>>>()?;
    Ok((users, total))
}

pub async fn update_profile(
    conn: &mut Conn,
    id: &str,
    username: &str,
    email: &str,
    name: &str,
    avatar_url: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET username = $2, username_lower = $3, email = $4, email_lower = $5, \
         name = $6, avatar_url = $7, updated_at = $8 WHERE id = $1",
    )
    .bind(id)
    .bind(username)
    .bind(username.to_lowercase())
    .bind(email)
    .bind(email.to_lowercase())
    .bind(name)
    .bind(avatar_url)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Marks users' authorization data as changed (their cached slices are stale
/// on every replica). Called by every store function that changes that data.
pub async fn bump_authz(conn: &mut Conn, user_ids: &[&str]) -> sqlx::Result<()> {
    for id in user_ids {
        sqlx::query("UPDATE users SET authz_version = authz_version + 1 WHERE id = $1")
            .bind(*id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The current authorization version of a user.
pub async fn authz_version(conn: &mut Conn, id: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query("SELECT authz_version FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("authz_version"))
        .transpose()
}

pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    status: UserStatus,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET status = $2, updated_at = $3, authz_version = authz_version + 1 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn set_roles(conn: &mut Conn, id: &str, roles: &[String], now: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET roles = $2, updated_at = $3, authz_version = authz_version + 1 WHERE id = $1")
        .bind(id)
        .bind(to_json_list(roles))
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn set_password_hash(
    conn: &mut Conn,
    id: &str,
    hash: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Sets how the user signs in; a `password` hash only for `password` users.
pub async fn set_login(
    conn: &mut Conn,
    id: &str,
    login_type: LoginType,
    password_hash: Option<&str>,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET login_type = $2, password_hash = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(login_type.as_str())
    .bind(password_hash)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn touch_last_seen(conn: &mut Conn, id: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET last_seen_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn delete(conn: &mut Conn, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The organizations a user is a member of, by name.
pub async fn organizations(conn: &mut Conn, user_id: &str) -> sqlx::Result<Vec<Organization>> {
    super::query::all(
        conn,
        sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM organizations o JOIN organization_members m ON m.organization_id = o.id \
             WHERE m.user_id = $1 ORDER BY o.name",
            super::orgs::ORG_COLUMNS_O
        )),
        (user_id,),
    )
    .await
}

/// Marks `user_id` as the deployment's first user. A unique key: of two racing
/// first users, one insert fails.
pub async fn mark_first_user(conn: &mut Conn, user_id: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO deployment_settings (key, value, updated_at) VALUES ('first_user_id', $1, $2)",
    )
    .bind(user_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// New users: (id, username, username_lower, email, email_lower, name,
/// avatar_url, status, login_type, password_hash, roles, created_at,
/// updated_at, authz_version) each.
pub async fn insert_many(tx: &mut Conn, rows: Vec<super::bulk::ArgRow>) -> sqlx::Result<()> {
    super::bulk::insert_rows(
        tx,
        "users (id, username, username_lower, email, email_lower, name, avatar_url, status, \
         login_type, password_hash, roles, created_at, updated_at, authz_version)",
        "",
        14,
        rows,
    )
    .await
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
