//! The LDAP directory source against a real slapd (tests/support/slapd.rs):
//! each test starts its own; a missing slapd fails the tests loudly.

#[path = "../../../tests/support/slapd.rs"]
mod slapd;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::testkit::{ClosedPort, wait_for};
use orgsync_sync::ldap::{
    Directory, DirectoryUser, LdapError, LdapSettings, ReadMode, ReadProgress, check_connection,
    group_names_digest, read_directory,
};
use serde_json::json;
use slapd::{
    GROUPS_DN, PEOPLE_DN, Slapd, group_dn, group_of_names_ldif, posix_group_ldif, user_dn,
    user_ldif,
};

fn settings(s: &Slapd) -> LdapSettings {
    LdapSettings {
        enabled: true,
        url: s.url(),
        bind_dn: slapd::SYNC_DN.to_owned(),
        bind_password: slapd::SYNC_PASSWORD.to_owned(),
        user_base_dn: PEOPLE_DN.to_owned(),
        group_base_dn: GROUPS_DN.to_owned(),
        claims: [("groups", "groups"), ("department", "departmentNumber")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..LdapSettings::default()
    }
}

fn no_progress() -> Arc<dyn Fn(ReadProgress) + Send + Sync> {
    Arc::new(|_| {})
}

async fn full(s: &LdapSettings) -> Result<Directory, LdapError> {
    read_directory(s, ReadMode::Full, no_progress()).await
}

fn user(d: &Directory, username: &str) -> DirectoryUser {
    d.users()
        .find(|u| u.username == username)
        .unwrap_or_else(|| panic!("no user {username} in {:?}", all(d)))
}

fn all(d: &Directory) -> Vec<DirectoryUser> {
    d.users().collect()
}

fn groups(u: &DirectoryUser) -> serde_json::Value {
    u.claims.get("groups").cloned().unwrap_or(json!(null))
}

fn basic_data(s: &Slapd) {
    s.ldapadd(&format!(
        "{}{}{}",
        user_ldif(
            "alice",
            "Alice A",
            "alice@example.test",
            &[
                ("departmentNumber", "eng"),
                ("departmentNumber", "research")
            ]
        ),
        user_ldif(
            "bob",
            "Bob B",
            "bob@example.test",
            &[("departmentNumber", "ops")]
        ),
        user_ldif("carol", "Carol C", "", &[]),
    ));
    s.ldapadd(&format!(
        "{}{}",
        group_of_names_ldif("eng", &[&user_dn("alice")]),
        posix_group_ldif("ops", 5000, &["bob", "Carol"]),
    ));
}

#[tokio::test]
async fn users_groups_by_member_memberuid_and_attribute_claims() {
    let s = Slapd::start();
    basic_data(&s);
    let d = full(&settings(&s)).await.unwrap();
    assert!(d.full);
    assert_eq!(d.len(), 3, "{:?}", all(&d));
    assert_eq!(d.groups_seen, 2);
    assert_eq!(d.present_ids.len(), 3);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let alice = user(&d, "alice");
    assert_eq!(alice.email, "alice@example.test");
    assert_eq!(alice.name, "Alice A");
    assert_eq!(alice.dn, user_dn("alice"));
    assert_eq!(alice.id.len(), 36, "entryUUID: {}", alice.id);
    assert_eq!(groups(&alice), json!(["eng"]));
    assert_eq!(alice.claims["department"], json!(["eng", "research"]));
    let bob = user(&d, "bob");
    assert_eq!(groups(&bob), json!(["ops"]));
    assert_eq!(bob.claims["department"], json!("ops"));
    let carol = user(&d, "carol");
    assert_eq!(carol.email, "");
    assert_eq!(
        groups(&carol),
        json!(["ops"]),
        "memberUid matches case-insensitively"
    );
    assert!(!carol.claims.contains_key("department"));

    // Only memberOf (maintained by the overlay for groupOfNames).
    let mut only_member_of = settings(&s);
    only_member_of.membership = vec!["memberOf".to_owned()];
    let d = full(&only_member_of).await.unwrap();
    assert_eq!(groups(&user(&d, "alice")), json!(["eng"]));
    assert_eq!(groups(&user(&d, "bob")), json!([]));

    // Only memberUid.
    let mut only_uid = settings(&s);
    only_uid.membership = vec!["memberUid".to_owned()];
    let d = full(&only_uid).await.unwrap();
    assert_eq!(groups(&user(&d, "alice")), json!([]));
    assert_eq!(groups(&user(&d, "bob")), json!(["ops"]));

    check_connection(&settings(&s)).await.unwrap();
}

#[tokio::test]
async fn nested_groups_with_a_cycle_terminate() {
    let s = Slapd::start();
    s.ldapadd(&format!(
        "{}{}",
        user_ldif("ann", "Ann", "ann@example.test", &[]),
        user_ldif("ben", "Ben", "ben@example.test", &[]),
    ));
    // A contains B, B contains A (a cycle); C contains A; D only has ben.
    s.ldapadd(&format!(
        "{}{}{}{}",
        group_of_names_ldif("A", &[&group_dn("B")]),
        group_of_names_ldif("B", &[&group_dn("A"), &user_dn("ann")]),
        group_of_names_ldif("C", &[&group_dn("A")]),
        group_of_names_ldif("D", &[&user_dn("ben")]),
    ));
    let d = full(&settings(&s)).await.unwrap();
    assert_eq!(groups(&user(&d, "ann")), json!(["A", "B", "C"]));
    assert_eq!(groups(&user(&d, "ben")), json!(["D"]));
    let cycles: Vec<_> = d
        .problems
        .iter()
        .filter(|p| p.kind == "group_cycle")
        .collect();
    assert_eq!(cycles.len(), 1, "{:?}", d.problems);

    let mut flat = settings(&s);
    flat.nested_groups = false;
    let d = full(&flat).await.unwrap();
    assert_eq!(groups(&user(&d, "ann")), json!(["B"]));
}

#[tokio::test]
async fn paged_reads_return_every_user_and_report_progress() {
    let s = Slapd::start();
    let ldif: String = (0..7)
        .map(|i| user_ldif(&format!("u{i}"), &format!("U {i}"), "", &[]))
        .collect();
    s.ldapadd(&ldif);
    let mut st = settings(&s);
    st.page_size = 2;
    let calls = Arc::new(AtomicUsize::new(0));
    let last_users = Arc::new(AtomicUsize::new(0));
    let (c, l) = (calls.clone(), last_users.clone());
    let progress: Arc<dyn Fn(ReadProgress) + Send + Sync> = Arc::new(move |p| {
        c.fetch_add(1, Ordering::SeqCst);
        l.store(p.users_read, Ordering::SeqCst);
    });
    let d = read_directory(&st, ReadMode::Full, progress).await.unwrap();
    assert_eq!(d.len(), 7);
    assert!(
        calls.load(Ordering::SeqCst) >= 4,
        "one call per page at least"
    );
    assert_eq!(last_users.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn tls_ldaps_and_starttls_with_the_test_ca() {
    let s = Slapd::start();
    basic_data(&s);
    let ca = s.ca_file().display().to_string();

    let mut ldaps = settings(&s);
    ldaps.url = s.ldaps_url();
    ldaps.ca_file = Some(ca.clone());
    assert_eq!(full(&ldaps).await.unwrap().len(), 3);

    let mut start_tls = settings(&s);
    start_tls.start_tls = true;
    start_tls.ca_file = Some(ca);
    assert_eq!(full(&start_tls).await.unwrap().len(), 3);

    // Not trusting the test CA (system roots only): a TLS error.
    for mut untrusted in [ldaps, start_tls] {
        untrusted.ca_file = None;
        let err = full(&untrusted).await.unwrap_err();
        assert!(matches!(err, LdapError::Tls { .. }), "{err:?}");
        assert!(err.to_string().starts_with("tls failure with"), "{err}");
    }
}

#[tokio::test]
async fn bind_failure_names_the_dn_not_the_password() {
    let s = Slapd::start();
    let mut st = settings(&s);
    st.bind_password = "wrong-secret-123".to_owned();
    for err in [
        full(&st).await.unwrap_err(),
        check_connection(&st).await.unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(matches!(err, LdapError::Bind { rc: 49, .. }), "{err:?}");
        assert!(msg.contains(slapd::SYNC_DN), "{msg}");
        assert!(msg.contains("invalid credentials"), "{msg}");
        assert!(!msg.contains("wrong-secret-123"), "{msg}");
        assert!(!format!("{err:?}").contains("wrong-secret-123"));
    }
    assert!(!format!("{st:?}").contains("wrong-secret-123"));
}

#[tokio::test]
async fn size_limit_fails_the_read() {
    let s = Slapd::start();
    let ldif: String = (0..60)
        .map(|i| user_ldif(&format!("u{i}"), &format!("U {i}"), "", &[]))
        .collect();
    s.ldapadd(&ldif);
    let mut st = settings(&s);
    st.bind_dn = slapd::LIMITED_DN.to_owned();
    st.bind_password = slapd::LIMITED_PASSWORD.to_owned();
    st.page_size = 10;
    let err = full(&st).await.unwrap_err();
    assert!(matches!(err, LdapError::Search { rc: 4, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(PEOPLE_DN) && msg.contains("size limit exceeded (rc 4)"),
        "{msg}"
    );
    // The unlimited account reads them all.
    assert_eq!(full(&settings(&s)).await.unwrap().len(), 60);
}

#[tokio::test]
async fn unreachable_url_fails_fast() {
    // Bound and never listening: refused at once, and nobody else's meanwhile.
    let closed = ClosedPort::new();
    let port = closed.port();
    let st = LdapSettings {
        enabled: true,
        url: format!("ldap://127.0.0.1:{port}"),
        bind_dn: slapd::SYNC_DN.to_owned(),
        bind_password: "x".to_owned(),
        user_base_dn: PEOPLE_DN.to_owned(),
        group_base_dn: GROUPS_DN.to_owned(),
        ..LdapSettings::default()
    };
    let started = Instant::now();
    let err = full(&st).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(matches!(err, LdapError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("cannot connect to `ldap://127.0.0.1:{port}`")),
        "{err}"
    );
}

#[tokio::test]
async fn slapd_killed_during_a_read_fails_it() {
    let s = Slapd::start();
    s.load_generated(2000, 20, false);
    let mut st = settings(&s);
    st.page_size = 100;
    let pid = s.pid().unwrap().to_string();
    let killed = Arc::new(AtomicBool::new(false));
    let k = killed.clone();
    let progress: Arc<dyn Fn(ReadProgress) + Send + Sync> = Arc::new(move |p| {
        if p.users_read > 0 && !k.swap(true, Ordering::SeqCst) {
            std::process::Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap();
        }
    });
    let err = read_directory(&st, ReadMode::Full, progress)
        .await
        .unwrap_err();
    assert!(killed.load(Ordering::SeqCst));
    assert!(matches!(err, LdapError::ConnectionLost { .. }), "{err:?}");
    assert!(err.to_string().contains("lost while reading"), "{err}");
}

#[tokio::test]
async fn missing_attributes_and_duplicates_are_problems() {
    let s = Slapd::start();
    basic_data(&s);
    s.ldapadd(&format!(
        "dn: cn=nouid,{PEOPLE_DN}\nobjectClass: inetOrgPerson\ncn: nouid\nsn: x\n\n\
         dn: cn=dup1,{PEOPLE_DN}\nobjectClass: inetOrgPerson\ncn: dup1\nsn: x\nuid: dup\n\n\
         dn: cn=dup2,{PEOPLE_DN}\nobjectClass: inetOrgPerson\ncn: dup2\nsn: x\nuid: DUP\n\n"
    ));
    let d = full(&settings(&s)).await.unwrap();
    let names: BTreeSet<String> = all(&d).iter().map(|u| u.username.clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["alice", "bob", "carol"].map(String::from))
    );
    assert_eq!(
        d.present_ids.len(),
        6,
        "skipped entries keep their ids present"
    );
    let kinds: Vec<(&str, &str)> = d
        .problems
        .iter()
        .map(|p| (p.kind.as_str(), p.dn.as_str()))
        .collect();
    assert!(
        kinds.contains(&("missing_attribute", &format!("cn=nouid,{PEOPLE_DN}"))),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, _)| *k == "duplicate_username")
            .count(),
        2,
        "{kinds:?}"
    );
}

/// GeneralizedTime (UTC) of a moment.
fn generalized_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test]
async fn incremental_read_returns_affected_users() {
    let s = Slapd::start();
    basic_data(&s);
    s.ldapadd(&format!(
        "{}{}",
        user_ldif(
            "dave",
            "Dave",
            "dave@example.test",
            &[("departmentNumber", "sales")]
        ),
        user_ldif("erin", "Erin", "erin@example.test", &[]),
    ));
    s.ldapadd(&group_of_names_ldif(
        "all",
        &[&user_dn("bob"), &user_dn("erin")],
    ));
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        group_dn("eng"),
        user_dn("bob")
    ));
    let st = settings(&s);
    let before = full(&st).await.unwrap();
    assert_eq!(groups(&user(&before, "bob")), json!(["all", "eng", "ops"]));
    let known: HashMap<String, u64> = before
        .users()
        .map(|u| {
            let names = u.claims["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap());
            (u.id.clone(), group_names_digest(names))
        })
        .collect();
    let carol_id = user(&before, "carol").id.clone();

    // Timestamps have a one-second resolution: `since` is the first second
    // after the last write above (the clock is polled until it gets there), so
    // every entry so far is older and every change below is at or after it.
    let written = generalized_time(SystemTime::now());
    let since = wait_for(
        "the clock to pass the second of the last write",
        Duration::from_secs(5),
        async || {
            let now = generalized_time(SystemTime::now());
            (now > written).then_some(now)
        },
    )
    .await;
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n\n\
         dn: {}\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: marketing\n\n",
        group_dn("eng"),
        user_dn("bob"),
        user_dn("dave"),
    ));
    s.delete(&user_dn("carol"));

    let d = read_directory(&st, ReadMode::Incremental { since, known }, no_progress())
        .await
        .unwrap();
    assert!(!d.full);
    let names: BTreeSet<String> = all(&d).iter().map(|u| u.username.clone()).collect();
    // bob: removed from eng; dave: modified; alice: member of the changed eng.
    // erin (untouched, in an unchanged group) is not affected; carol is gone.
    assert_eq!(
        names,
        BTreeSet::from(["alice", "bob", "dave"].map(String::from)),
        "{:?}",
        all(&d)
    );
    assert_eq!(groups(&user(&d, "bob")), json!(["all", "ops"]));
    assert_eq!(user(&d, "dave").claims["department"], json!("marketing"));
    assert!(!d.present_ids.contains(&carol_id));
    assert_eq!(d.present_ids.len(), 4);

    // A bad `since` is an error, not a full read.
    let err = read_directory(
        &st,
        ReadMode::Incremental {
            since: "yesterday".into(),
            known: HashMap::new(),
        },
        no_progress(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LdapError::InvalidSince(_)), "{err:?}");
}

#[test]
fn settings_validation() {
    let ok = LdapSettings {
        enabled: true,
        url: "ldap://127.0.0.1:389".into(),
        bind_dn: "cn=sync,dc=example,dc=test".into(),
        bind_password: "pw".into(),
        user_base_dn: PEOPLE_DN.into(),
        group_base_dn: GROUPS_DN.into(),
        ..LdapSettings::default()
    };
    ok.validate().unwrap();
    assert_eq!(ok.full_sync_interval(), Some(Duration::from_secs(86_400)));
    // Disabled defaults are valid; enabled without connection fields are not.
    LdapSettings::default().validate().unwrap();
    let fields = |s: &LdapSettings| -> Vec<String> {
        s.validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    };
    let enabled_empty = LdapSettings {
        enabled: true,
        ..LdapSettings::default()
    };
    assert_eq!(
        fields(&enabled_empty),
        ["url", "user_base_dn", "group_base_dn"]
    );

    let bad = LdapSettings {
        url: "ldaps://127.0.0.1:636".into(),
        start_tls: true,
        bind_dn: "cn=sync,,dc=x".into(),
        user_base_dn: "people".into(),
        user_filter: "(objectClass=inetOrgPerson".into(),
        group_filter: "(|(cn=a)(=b))".into(),
        page_size: 0,
        schedule: "*/15 * * * *x".into(),
        full_sync_interval: "soon".into(),
        max_removal_percent: 150.0,
        membership: vec!["member".into(), "uniqueMember".into()],
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..ok.clone()
    };
    let f = fields(&bad);
    for expected in [
        "start_tls",
        "ca_file",
        "bind_dn",
        "user_base_dn",
        "user_filter",
        "group_filter",
        "membership",
        "page_size",
        "schedule",
        "full_sync_interval",
        "max_removal_percent",
    ] {
        assert!(
            f.iter().any(|x| x == expected),
            "{expected} missing from {f:?}"
        );
    }
    let five_fields = LdapSettings {
        schedule: "*/15 * * * *".into(),
        ..ok.clone()
    };
    assert_eq!(fields(&five_fields), ["schedule"]);
    let seven_fields = LdapSettings {
        schedule: "0 0 3 * * * *".into(),
        ..ok.clone()
    };
    seven_fields.validate().unwrap();
    let bad_url = LdapSettings {
        url: "http://x".into(),
        ..ok.clone()
    };
    assert_eq!(fields(&bad_url), ["url"]);
    let big_page = LdapSettings {
        page_size: 10_001,
        ..ok.clone()
    };
    assert_eq!(fields(&big_page), ["page_size"]);
    for (i, d) in [("90s", 90), ("15m", 900), ("7d", 604_800)] {
        let s = LdapSettings {
            full_sync_interval: i.into(),
            ..ok.clone()
        };
        assert_eq!(s.full_sync_interval(), Some(Duration::from_secs(d)));
    }
    // Unknown keys are refused; defaults fill the rest.
    assert!(serde_json::from_value::<LdapSettings>(json!({"urll": "x"})).is_err());
    let parsed: LdapSettings = serde_json::from_value(json!({"page_size": 10})).unwrap();
    assert_eq!(parsed.user_attributes.id, "entryUUID");
    assert_eq!(parsed.membership, ["member", "memberUid", "memberOf"]);
}
