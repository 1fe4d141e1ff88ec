//! Domain types served by the API, and the parsing of user input into them.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A name: lowercase slug `^[a-z0-9](-?[a-z0-9])*$`, 1-64 characters, and not a
/// UUID (route segments accept an id or a name, so a name may not look like an id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &str, raw: &str) -> Result<Name, Error> {
        check_identifier_length(field, raw)?;
        let bytes = raw.as_bytes();
        let ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes.first().is_some_and(|b| *b != b'-')
            && bytes.last().is_some_and(|b| *b != b'-')
            && !raw.contains("--");
        if !ok {
            return Err(Error::validation(
                field,
                format!("`{raw}` is not a lowercase slug (a-z, 0-9, single hyphens inside)"),
            ));
        }
        if uuid::Uuid::parse_str(raw).is_ok() {
            return Err(Error::validation(field, "must not be a UUID"));
        }
        Ok(Name(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A username: letters, digits, `-`, `_`, `.`, starting and ending with a letter
/// or digit, 1-64 characters, unique case-insensitively; not `me`, not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(field: &str, raw: &str) -> Result<Username, Error> {
        check_identifier_length(field, raw)?;
        let bytes = raw.as_bytes();
        let edge = |b: &u8| b.is_ascii_alphanumeric();
        let ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && bytes.first().is_some_and(edge)
            && bytes.last().is_some_and(edge);
        if !ok {
            return Err(Error::validation(
                field,
                format!(
                    "`{raw}` may hold letters, digits, `-`, `_` and `.`, and must start and end with a letter or digit"
                ),
            ));
        }
        if raw.eq_ignore_ascii_case("me") {
            return Err(Error::validation(field, "`me` is reserved"));
        }
        if uuid::Uuid::parse_str(raw).is_ok() {
            return Err(Error::validation(field, "must not be a UUID"));
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks an email address: one `@`, non-empty local part and domain, no spaces.
pub fn parse_email(field: &str, raw: &str) -> Result<String, Error> {
    let raw = raw.trim();
    let valid = raw.len() <= 254
        && !raw.chars().any(char::is_whitespace)
        && raw.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.')
                || domain == "localhost"
        });
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(Error::validation(
            field,
            format!("`{raw}` is not an email address"),
        ))
    }
}

/// A name or username: 1 to 64 characters.
fn check_identifier_length(field: &str, raw: &str) -> Result<(), Error> {
    if raw.is_empty() {
        return Err(Error::validation(field, "must not be empty"));
    }
    if raw.chars().count() > 64 {
        return Err(Error::validation(field, "must be at most 64 characters"));
    }
    Ok(())
}

/// Free text with a length limit.
pub fn parse_text(field: &str, raw: &str, max: usize) -> Result<String, Error> {
    if raw.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(raw.to_owned())
}

/// An image reference shown by clients (an org's icon, a group's avatar):
/// empty, an `http(s)://` URL, or a path on this server (`/emojis/x.png`).
/// Anything else (`javascript:`, `data:`, `//host/...`) is refused: a client
/// that puts it in a link or an `src` must never run or fetch what it says.
pub fn parse_image_url(field: &str, raw: &str) -> Result<String, Error> {
    let value = parse_text(field, raw.trim(), 2048)?;
    if value.is_empty() {
        return Ok(value);
    }
    let lower = value.to_ascii_lowercase();
    let path = value.starts_with('/') && !value.starts_with("//") && !value.starts_with("/\\");
    let web = (lower.starts_with("https://") || lower.starts_with("http://"))
        && reqwest::Url::parse(&value).is_ok_and(|u| u.host().is_some());
    if !(path || web) || value.chars().any(char::is_whitespace) {
        return Err(Error::validation(
            field,
            "must be an http(s) URL or a path on this server (starting with /)",
        ));
    }
    Ok(value)
}

pub fn parse_password(field: &str, raw: &str) -> Result<(), Error> {
    let n = raw.chars().count();
    if n < 8 {
        return Err(Error::validation(field, "must be at least 8 characters"));
    }
    if n > 256 {
        return Err(Error::validation(field, "must be at most 256 characters"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Suspended,
    Dormant,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Dormant => "dormant",
        }
    }

    pub fn parse(s: &str) -> UserStatus {
        match s {
            "suspended" => UserStatus::Suspended,
            "dormant" => UserStatus::Dormant,
            _ => UserStatus::Active,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoginType {
    Password,
    Oidc,
    Ldap,
    None,
}

impl LoginType {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginType::Password => "password",
            LoginType::Oidc => "oidc",
            LoginType::Ldap => "ldap",
            LoginType::None => "none",
        }
    }

    pub fn parse(s: &str) -> LoginType {
        match s {
            "password" => LoginType::Password,
            "oidc" => LoginType::Oidc,
            "ldap" => LoginType::Ldap,
            _ => LoginType::None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    #[sqlx(try_from = "crate::store::Text")]
    pub status: UserStatus,
    #[sqlx(try_from = "crate::store::Text")]
    pub login_type: LoginType,
    /// Site roles; `member` is implicit and always listed.
    #[sqlx(try_from = "crate::store::users::SiteRoles")]
    pub roles: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_seen_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub is_default: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl Organization {
    pub fn org_ref(&self) -> orgsync_policy::OrgRef {
        orgsync_policy::OrgRef::new(self.id.clone(), self.is_default)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub organization_id: String,
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    /// Org roles; `organization-member` is implicit and not listed.
    #[sqlx(try_from = "crate::store::Text")]
    pub roles: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A custom organization role as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct CustomRole {
    pub organization_id: String,
    pub name: String,
    pub display_name: String,
    #[serde(rename = "organization_permissions")]
    #[sqlx(rename = "permissions", try_from = "crate::store::Text")]
    pub permissions: Vec<orgsync_policy::RolePermission>,
    /// Always empty: a custom role acts only in its organization.
    #[sqlx(skip)]
    pub site_permissions: Vec<orgsync_policy::RolePermission>,
    /// Always empty.
    #[sqlx(skip)]
    pub user_permissions: Vec<orgsync_policy::RolePermission>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct GroupMember {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Group {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub display_name: String,
    pub avatar_url: String,
    pub quota_allowance: i64,
    pub source: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub is_everyone: bool,
    #[sqlx(skip)]
    pub members: Vec<GroupMember>,
    pub created_at: String,
    pub updated_at: String,
}

/// The name of every organization's implicit group (id == organization id).
pub const EVERYONE: &str = "Everyone";

/// The default organization created at first start.
pub const DEFAULT_ORG_NAME: &str = "coder";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_slugs() {
        for ok in ["a", "data-platform", "x1-2-3", &"a".repeat(64)] {
            assert!(Name::parse("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "Data",
            "a_b",
            "a b",
            "é",
            &"a".repeat(65),
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert!(Name::parse("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames() {
        for ok in ["alice", "Alice.Smith", "a_b-c", "x"] {
            assert!(Username::parse("username", ok).is_ok(), "{ok}");
        }
        for bad in ["", "me", "ME", ".a", "a.", "a b", "a@b", &"a".repeat(65)] {
            assert!(Username::parse("username", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(parse_email("email", "a@example.com").is_ok());
        assert!(parse_email("email", "a@localhost").is_ok());
        for bad in ["", "a", "@x.y", "a@", "a b@x.y", "a@b@c.d"] {
            assert!(parse_email("email", bad).is_err(), "{bad}");
        }
    }
}
