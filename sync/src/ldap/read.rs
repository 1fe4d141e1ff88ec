//! The network part: connect, bind, paged searches. Runs inside a spawned
//! task (ldap3 may panic on malformed BER).

use std::collections::HashMap;
use std::sync::Arc;

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchResult};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::resolve::Builder;
use super::{CONNECT_TIMEOUT, LdapError, LdapSettings, OPERATION_TIMEOUT, ReadProgress};

/// One entry as read: attribute names lowercased.
#[derive(Debug, Default)]
pub(crate) struct RawEntry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
    pub bin: HashMap<String, Vec<Vec<u8>>>,
}

impl RawEntry {
    pub(crate) fn values(&self, attr: &str) -> &[String] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub(crate) fn first(&self, attr: &str) -> Option<&str> {
        self.values(attr)
            .iter()
            .map(String::as_str)
            .find(|v| !v.is_empty())
    }
}

/// Reads a PEM CA bundle into a root store.
pub(crate) fn load_ca(path: &str) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("`{path}` is not a valid PEM file: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("`{path}` holds an invalid CA certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!("`{path}` holds no PEM certificate"));
    }
    Ok(store)
}

fn tls_config(s: &LdapSettings) -> Result<Arc<ClientConfig>, LdapError> {
    let tls_err = |detail: String| LdapError::Tls {
        url: s.url.clone(),
        detail,
    };
    let roots = match &s.ca_file {
        Some(path) => load_ca(path).map_err(tls_err)?,
        None => {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(tls_err(
                    "no system CA certificates found; set `ca_file`".to_owned(),
                ));
            }
            store
        }
    };
    // An explicit provider: the process may have several rustls providers
    // compiled in, and then the default one is ambiguous.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn is_tls_io(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner
        .downcast_ref::<rustls::Error>()
        .map(ToString::to_string)
}

fn connect_error(s: &LdapSettings, e: ldap3::LdapError) -> LdapError {
    let url = s.url.clone();
    let tls = s.start_tls || s.url.starts_with("ldaps://");
    match e {
        ldap3::LdapError::Timeout { .. } => LdapError::Connect {
            url,
            detail: format!(
                "no answer within {} s (unreachable?)",
                CONNECT_TIMEOUT.as_secs()
            ),
        },
        ldap3::LdapError::Io { source } => match is_tls_io(&source) {
            Some(detail) => LdapError::Tls { url, detail },
            None if tls && source.kind() == std::io::ErrorKind::InvalidData => LdapError::Tls {
                url,
                detail: source.to_string(),
            },
            None => LdapError::Connect {
                url,
                detail: source.to_string(),
            },
        },
        ldap3::LdapError::Rustls { source } => LdapError::Tls {
            url,
            detail: source.to_string(),
        },
        ldap3::LdapError::DNSName { source } => LdapError::Tls {
            url,
            detail: format!("invalid server name: {source}"),
        },
        ldap3::LdapError::LdapResult { result } if s.start_tls => LdapError::Tls {
            url,
            detail: format!(
                "StartTLS refused: {} (rc {}) {}",
                super::rc_name(result.rc),
                result.rc,
                result.text
            ),
        },
        other => LdapError::Connect {
            url,
            detail: other.to_string(),
        },
    }
}

fn lost(s: &LdapSettings, what: &str, e: ldap3::LdapError) -> LdapError {
    match e {
        ldap3::LdapError::LdapResult { result } => LdapError::Search {
            base: what.to_owned(),
            rc: result.rc,
            text: result.text,
        },
        ldap3::LdapError::Timeout { .. } => LdapError::Search {
            base: what.to_owned(),
            rc: 85,
            text: format!("no answer within {} s", OPERATION_TIMEOUT.as_secs()),
        },
        other => LdapError::ConnectionLost {
            url: s.url.clone(),
            what: format!("`{what}`"),
            detail: other.to_string(),
        },
    }
}

/// Connects (TLS as configured) and binds; an empty `bind_dn` stays anonymous.
pub(crate) async fn connect_and_bind(s: &LdapSettings) -> Result<Ldap, LdapError> {
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(CONNECT_TIMEOUT)
        .set_starttls(s.start_tls);
    if s.start_tls || s.url.starts_with("ldaps://") {
        conn_settings = conn_settings.set_config(tls_config(s)?);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &s.url)
        .await
        .map_err(|e| connect_error(s, e))?;
    ldap3::drive!(conn);
    if !s.bind_dn.is_empty() {
        let bind_err = |rc: u32, text: String| LdapError::Bind {
            bind_dn: s.bind_dn.clone(),
            rc,
            text,
        };
        let res = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .simple_bind(&s.bind_dn, &s.bind_password)
            .await
            .map_err(|e| match e {
                ldap3::LdapError::LdapResult { result } => bind_err(result.rc, result.text),
                other => lost(s, "the bind", other),
            })?;
        if res.rc != 0 {
            return Err(bind_err(res.rc, res.text));
        }
    }
    Ok(ldap)
}

/// Binary attributes that may happen to be valid UTF-8 in some entries.
const BINARY_ATTRIBUTES: [&str; 3] = ["objectguid", "objectsid", "ms-ds-consistencyguid"];

fn to_raw(entry: SearchEntry) -> RawEntry {
    let mut raw = RawEntry {
        dn: entry.dn,
        ..RawEntry::default()
    };
    for (k, v) in entry.attrs {
        let k = k.to_ascii_lowercase();
        if BINARY_ATTRIBUTES.contains(&k.as_str()) {
            raw.bin
                .entry(k)
                .or_default()
                .extend(v.into_iter().map(String::into_bytes));
        } else {
            // A value with NUL is not text any database stores: it is kept as
            // bytes, so what reads it as text finds no value (and reports it).
            let (text, bytes): (Vec<String>, Vec<String>) =
                v.into_iter().partition(|s| !s.contains('\0'));
            if !bytes.is_empty() {
                raw.bin
                    .entry(k.clone())
                    .or_default()
                    .extend(bytes.into_iter().map(String::into_bytes));
            }
            if !text.is_empty() {
                raw.attrs.entry(k).or_default().extend(text);
            }
        }
    }
    for (k, v) in entry.bin_attrs {
        raw.bin.entry(k.to_ascii_lowercase()).or_default().extend(v);
    }
    raw
}

/// One paged subtree search; every page's result must be success. Each
/// entry goes to `on_entry` as its page arrives; `on_page` gets the count so
/// far after each page.
async fn paged_search(
    ldap: &mut Ldap,
    s: &LdapSettings,
    base: &str,
    filter: &str,
    attrs: &[String],
    mut on_entry: impl FnMut(&RawEntry),
    mut on_page: impl FnMut(usize),
) -> Result<(), LdapError> {
    let mut count = 0usize;
    let mut cookie = Vec::new();
    let size = i32::try_from(s.page_size).unwrap_or(500);
    loop {
        let SearchResult(entries, result) = ldap
            .with_controls(PagedResults {
                size,
                cookie: std::mem::take(&mut cookie),
            })
            .with_timeout(OPERATION_TIMEOUT)
            .search(base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|e| lost(s, base, e))?;
        if result.rc == 10 || !result.refs.is_empty() {
            return Err(LdapError::Referral {
                base: base.to_owned(),
                refs: result.refs,
            });
        }
        if result.rc != 0 {
            return Err(LdapError::Search {
                base: base.to_owned(),
                rc: result.rc,
                text: result.text,
            });
        }
        // A continuation reference is a referral (never chased), and
        // `SearchEntry::construct` would panic on one; intermediate messages
        // carry no entry.
        if entries.iter().any(|e| e.is_ref()) {
            return Err(LdapError::Referral {
                base: base.to_owned(),
                refs: vec!["(search continuation reference)".to_owned()],
            });
        }
        for e in entries.into_iter().filter(|e| !e.is_intermediate()) {
            on_entry(&to_raw(SearchEntry::construct(e)));
            count += 1;
        }
        on_page(count);
        for Control(kind, raw) in &result.ctrls {
            if let Some(ControlType::PagedResults) = kind {
                let pr: PagedResults = raw.parse();
                cookie = pr.cookie;
            }
        }
        if cookie.is_empty() {
            return Ok(());
        }
    }
}

fn wrap_filter(f: &str) -> String {
    let f = f.trim();
    if f.starts_with('(') {
        f.to_owned()
    } else {
        format!("({f})")
    }
}

/// Reads every group, then every user, into `builder`.
pub(crate) async fn read_into(
    s: &LdapSettings,
    incremental: bool,
    progress: Arc<dyn Fn(ReadProgress) + Send + Sync>,
    builder: &mut Builder,
) -> Result<(), LdapError> {
    let mut ldap = connect_and_bind(s).await?;
    let mut group_attrs = vec![s.group_name_attribute.clone()];
    if s.has_membership("member") {
        group_attrs.push("member".to_owned());
    }
    if s.has_membership("memberUid") {
        group_attrs.push("memberUid".to_owned());
    }
    if s.has_membership("memberOf") {
        group_attrs.push("memberOf".to_owned());
    }
    let mut user_attrs = vec![
        s.user_attributes.username.clone(),
        s.user_attributes.email.clone(),
        s.user_attributes.name.clone(),
        s.user_attributes.id.clone(),
    ];
    if s.has_membership("memberOf") {
        user_attrs.push("memberOf".to_owned());
    }
    for source in s.claims.values() {
        if source != super::GROUPS_CLAIM {
            user_attrs.push(source.clone());
        }
    }
    if incremental {
        for a in ["modifyTimestamp", "createTimestamp"] {
            group_attrs.push(a.to_owned());
            user_attrs.push(a.to_owned());
        }
    }
    user_attrs.sort_by_key(|a| a.to_ascii_lowercase());
    user_attrs.dedup_by_key(|a| a.to_ascii_lowercase());
    group_attrs.sort_by_key(|a| a.to_ascii_lowercase());
    group_attrs.dedup_by_key(|a| a.to_ascii_lowercase());

    let mut groups_read = 0;
    if !s.membership.is_empty() || s.claims.values().any(|v| v == super::GROUPS_CLAIM) {
        paged_search(
            &mut ldap,
            s,
            &s.group_base_dn,
            &wrap_filter(&s.group_filter),
            &group_attrs,
            |e| builder.add_group(e),
            |n| {
                groups_read = n;
                progress(ReadProgress {
                    users_read: 0,
                    groups_read: n,
                });
            },
        )
        .await?;
    }
    builder.end_groups();
    paged_search(
        &mut ldap,
        s,
        &s.user_base_dn,
        &wrap_filter(&s.user_filter),
        &user_attrs,
        |e| builder.add_user(e),
        |n| {
            progress(ReadProgress {
                users_read: n,
                groups_read,
            });
        },
    )
    .await?;
    let _ = ldap.unbind().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_nul_are_not_text() {
        let entry = SearchEntry {
            dn: "uid=a,dc=example,dc=test".to_owned(),
            attrs: HashMap::from([
                ("uid".to_owned(), vec!["a\0b".to_owned()]),
                ("cn".to_owned(), vec!["Ann".to_owned(), "x\0".to_owned()]),
            ]),
            bin_attrs: HashMap::new(),
        };
        let raw = to_raw(entry);
        assert_eq!(raw.first("uid"), None);
        assert_eq!(raw.values("cn"), ["Ann".to_owned()]);
        assert_eq!(raw.bin["uid"], [b"a\0b".to_vec()]);
    }
}
