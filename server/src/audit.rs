//! Audit entries: who changed what, with a field diff, written in the same
//! transaction as the change.

use serde_json::{Map, Value, json};

use crate::store::{self, Write, audit::AuditEntry};

/// Who acts and from where.
#[derive(Debug, Clone, Default)]
pub struct AuditCtx {
    pub user_id: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    /// `api`, `oidc_login` or `ldap_sync`.
    pub source: &'static str,
}

/// Fields never copied into a diff.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "password_hash",
    "hashed_secret",
    "key",
    "session_token",
    "bind_password",
];

/// `{field: {old, new}}` for every top-level field that differs.
pub fn diff(old: &Value, new: &Value) -> Value {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (k, nv) in n {
        if SECRET_FIELDS.contains(&k.as_str()) || k == "updated_at" {
            continue;
        }
        let ov = o.get(k).unwrap_or(&Value::Null);
        if ov != nv {
            out.insert(k.clone(), json!({"old": ov, "new": nv}));
        }
    }
    for (k, ov) in o {
        if !n.contains_key(k) && !SECRET_FIELDS.contains(&k.as_str()) && k != "updated_at" {
            out.insert(k.clone(), json!({"old": ov, "new": Value::Null}));
        }
    }
    Value::Object(out)
}

/// The diff of a creation or deletion.
pub fn created(new: &Value) -> Value {
    diff(&Value::Null, new)
}

pub fn deleted(old: &Value) -> Value {
    diff(old, &Value::Null)
}

pub fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// What changed, on which resource.
pub struct Change<'a> {
    pub organization_id: Option<&'a str>,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub resource_target: &'a str,
    pub diff: Value,
    pub status_code: u16,
}

impl<'a> Change<'a> {
    /// A change of `user`'s account (site-wide).
    pub fn user(
        user: &'a crate::model::User,
        action: &'a str,
        diff: Value,
        status_code: u16,
    ) -> Self {
        Self::site("user", action, &user.id, &user.username, diff, status_code)
    }

    /// An event of a session or API token (login, logout, token creation).
    pub fn api_key(
        action: &'a str,
        key_id: &'a str,
        target: &'a str,
        diff: Value,
        status_code: u16,
    ) -> Self {
        Self::site("api_key", action, key_id, target, diff, status_code)
    }

    /// A change of a site-wide resource.
    pub fn site(
        resource_type: &'a str,
        action: &'a str,
        resource_id: &'a str,
        resource_target: &'a str,
        diff: Value,
        status_code: u16,
    ) -> Self {
        Self {
            organization_id: None,
            action,
            resource_type,
            resource_id,
            resource_target,
            diff,
            status_code,
        }
    }

    /// A change of `user`'s membership of organization `org_id`.
    pub fn member(
        org_id: &'a str,
        user: &'a crate::model::User,
        action: &'a str,
        diff: Value,
        status_code: u16,
    ) -> Self {
        let change = Self::site(
            "organization_member",
            action,
            &user.id,
            &user.username,
            diff,
            status_code,
        );
        change.in_org(org_id)
    }

    /// This change, of a resource of organization `org_id`.
    pub fn in_org(self, org_id: &'a str) -> Self {
        Self {
            organization_id: Some(org_id),
            ..self
        }
    }
}

/// A resource whose creation, update and deletion are audited: what its
/// entries name.
pub trait Audited: serde::Serialize {
    /// The entries' `resource_type`.
    const RESOURCE_TYPE: &'static str;
    fn audit_id(&self) -> &str;
    /// The entries' `resource_target`: the name people know it by.
    fn audit_target(&self) -> &str;
    /// The organization it belongs to (`None`: site-wide).
    fn audit_org(&self) -> Option<&str>;
}

impl<'a> Change<'a> {
    fn of<T: Audited>(item: &'a T, action: &'a str, diff: Value, status_code: u16) -> Self {
        Self {
            organization_id: item.audit_org(),
            action,
            resource_type: T::RESOURCE_TYPE,
            resource_id: item.audit_id(),
            resource_target: item.audit_target(),
            diff,
            status_code,
        }
    }

    /// `new` was created (201).
    pub fn created<T: Audited>(new: &'a T) -> Self {
        Self::of(new, "create", created(&to_value(new)), 201)
    }

    /// `old` became `new` (200; named as it is now).
    pub fn updated<T: Audited>(old: &T, new: &'a T) -> Self {
        Self::of(new, "update", diff(&to_value(old), &to_value(new)), 200)
    }

    /// `old` was deleted (204).
    pub fn deleted<T: Audited>(old: &'a T) -> Self {
        Self::of(old, "delete", deleted(&to_value(old)), 204)
    }
}

macro_rules! audited {
    ($ty:ty, $kind:literal, $target:ident, |$s:ident| $org:expr) => {
        impl Audited for $ty {
            const RESOURCE_TYPE: &'static str = $kind;
            fn audit_id(&self) -> &str {
                &self.id
            }
            fn audit_target(&self) -> &str {
                &self.$target
            }
            fn audit_org(&self) -> Option<&str> {
                let $s = self;
                $org
            }
        }
    };
}

audited!(crate::model::User, "user", username, |_u| None);
audited!(crate::model::Organization, "organization", name, |o| Some(
    &o.id
));
audited!(crate::model::Group, "group", name, |g| Some(
    &g.organization_id
));
audited!(crate::store::templates::Template, "template", name, |t| {
    Some(&t.organization_id)
});
audited!(
    crate::store::templates::TemplateVersion,
    "template_version",
    name,
    |v| Some(&v.organization_id)
);
audited!(
    crate::store::provisioners::ProvisionerKey,
    "provisioner_key",
    name,
    |k| Some(&k.organization_id)
);

/// The audit entry of `change`, made by `ctx` at `now`.
pub fn entry(ctx: &AuditCtx, now: &str, change: Change<'_>) -> AuditEntry {
    AuditEntry {
        id: store::new_id(),
        time: now.to_owned(),
        user_id: ctx.user_id.clone(),
        organization_id: change.organization_id.map(str::to_owned),
        action: change.action.to_owned(),
        resource_type: change.resource_type.to_owned(),
        resource_id: change.resource_id.to_owned(),
        resource_target: change.resource_target.to_owned(),
        diff: change.diff,
        status_code: i64::from(change.status_code),
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
        request_id: ctx.request_id.clone(),
        source: ctx.source.to_owned(),
    }
}

/// Writes the audit entry of `change`, under the permit that opened `w`.
pub async fn record(
    w: &mut Write<'_>,
    ctx: &AuditCtx,
    now: &str,
    change: Change<'_>,
) -> sqlx::Result<()> {
    store::audit::insert(w, entry(ctx, now, change)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_changed_fields_only_and_never_secrets() {
        let d = diff(
            &json!({"name": "a", "same": 1, "password_hash": "x", "gone": true}),
            &json!({"name": "b", "same": 1, "password_hash": "y"}),
        );
        assert_eq!(
            d,
            json!({"name": {"old": "a", "new": "b"}, "gone": {"old": true, "new": null}})
        );
        assert_eq!(
            created(&json!({"a": 1})),
            json!({"a": {"old": null, "new": 1}})
        );
    }
}
