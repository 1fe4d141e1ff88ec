//! A private OpenLDAP `slapd` for tests: its own cn=config and data in a temp
//! dir, 127.0.0.1 ports for `ldap://` (with StartTLS) and `ldaps://` (see
//! [`candidate_port`] for how they are chosen without a race), a throwaway CA.
//! Used by `orgsync-sync`'s tests, the server's e2e tests and the LDAP
//! benchmark through `#[path = ".../tests/support/slapd.rs"] mod slapd;`, next
//! to `mod testkit;` (same folder), which it uses; depends on std, `tempfile`
//! and tokio. Missing `slapd`, `ldap-utils` or `openssl`
//! panics with a clear message: tests never skip silently
//! (`scripts/install-deps`).
//!
//! The directory: suffix `dc=example,dc=test` with `ou=people`, `ou=groups`,
//! `ou=services`; admin `cn=admin,dc=example,dc=test` / `admin`; service
//! accounts `cn=sync,ou=services,...` / `sync-password` (no limits) and
//! `cn=limited,ou=services,...` / `limited-password` (frontend `olcSizeLimit:
//! 50`: a search of more than 50 entries fails with rc=4). memberOf (for
//! groupOfNames/member) and refint overlays are on.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: fails loudly"
)]

use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use crate::testkit::{ClosedPort, wait_for_blocking};

pub const SUFFIX: &str = "dc=example,dc=test";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=test";
pub const ADMIN_PASSWORD: &str = "admin";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=test";
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=test";
pub const SYNC_DN: &str = "cn=sync,ou=services,dc=example,dc=test";
pub const SYNC_PASSWORD: &str = "sync-password";
pub const LIMITED_DN: &str = "cn=limited,ou=services,dc=example,dc=test";
pub const LIMITED_PASSWORD: &str = "limited-password";
/// The frontend size limit that applies to `LIMITED_DN`.
pub const SIZE_LIMIT: usize = 50;

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    tls_port: u16,
    child: Option<Child>,
    /// While killed: its two ports, held closed until `restart`.
    held: Vec<ClosedPort>,
}

/// How many times a start is tried with fresh ports when one was taken.
const START_ATTEMPTS: u32 = 10;

fn require(cmd: &str) -> String {
    let candidates = [
        cmd.to_owned(),
        format!("/usr/sbin/{cmd}"),
        format!("/usr/bin/{cmd}"),
    ];
    for c in &candidates {
        if c.starts_with('/') && Path::new(c).exists() {
            return c.clone();
        }
        if !c.starts_with('/')
            && Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            return c.clone();
        }
    }
    panic!(
        "`{cmd}` is not installed: the LDAP tests need OpenLDAP's slapd and ldap-utils \
         (and openssl); run scripts/install-deps as root \
         (apt-get install slapd ldap-utils openssl)"
    );
}

/// A port for slapd to listen on, free when chosen.
///
/// slapd cannot report a port: given `:0` it listens on the default port
/// (389/636), and it cannot inherit a listening socket (no socket activation;
/// `ldapi://` is not TCP). So it must be told its ports, and a port seen free
/// could be taken before slapd binds it. Two things close that race:
/// - candidates come from below the kernel's ephemeral port range
///   (`/proc/sys/net/ipv4/ip_local_port_range`), which the kernel never hands
///   out, neither for a bind to port 0 (what every other server of the tests
///   does) nor as the local port of an outgoing connection; only a process
///   that picks ports itself can race for them;
/// - a start that fails because a port is taken (slapd exits, logging
///   `Address already in use`) is retried with fresh ports ([`Slapd::start`]).
///
/// Once slapd is bound, the port is its own; when a test kills slapd, the
/// ports are held closed ([`ClosedPort`]) until `restart`.
fn candidate_port(avoid: u16) -> u16 {
    let (low, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| {
            let mut it = r.split_whitespace().map(str::parse::<u16>);
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((32768, 60999));
    const FIRST: u16 = 10_000;
    if low <= FIRST + 1000 {
        // No room below the ephemeral range: take one the kernel picks (the
        // retry on `Address already in use` still covers the race).
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on 127.0.0.1");
    }
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let mut x = seed.finish();
    for _ in 0..1000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = FIRST + u16::try_from((x >> 33) % u64::from(low - FIRST)).unwrap_or(0);
        // A quick look first saves a slapd start; slapd's own bind decides.
        if port != avoid && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {low} on 127.0.0.1 after 1000 tries");
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_stdin(cmd: &mut Command, input: &str, what: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    // A tool that fails may stop reading (a broken pipe): its status and
    // output say why. A tool that succeeds must have read all its input.
    let written = writer.join().expect("stdin writer thread");
    if out.status.success() {
        if let Err(e) = written {
            panic!("{what} succeeded without reading all its input: {e}");
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The repository root (the folder holding `scripts/`).
pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        if dir.join("scripts/gen-ldap-data").exists() {
            return dir;
        }
        if !dir.pop() {
            panic!(
                "cannot find scripts/gen-ldap-data above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
}

fn make_certs(dir: &Path) {
    let openssl = require("openssl");
    let d = |f: &str| dir.join(f).display().to_string();
    run(
        Command::new(&openssl).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &d("ca.key"),
            "-out",
            &d("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=orgsync test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]),
        "openssl (CA)",
    );
    run(
        Command::new(&openssl).args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &d("server.key"),
            "-out",
            &d("server.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ]),
        "openssl (server key)",
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(
        Command::new(&openssl).args([
            "x509",
            "-req",
            "-in",
            &d("server.csr"),
            "-CA",
            &d("ca.pem"),
            "-CAkey",
            &d("ca.key"),
            "-CAcreateserial",
            "-out",
            &d("server.pem"),
            "-days",
            "2",
            "-extfile",
            &d("server.ext"),
        ]),
        "openssl (server cert)",
    );
}

fn config_ldif(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcTLSCACertificateFile: {d}/ca.pem
olcTLSCertificateFile: {d}/server.pem
olcTLSCertificateKeyFile: {d}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
olcModuleLoad: syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: {SIZE_LIMIT}

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {d}/data
olcSuffix: {SUFFIX}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PASSWORD}
olcDbNoSync: TRUE
olcDbMaxSize: 268435456
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcDbIndex: memberUid eq
olcLimits: {{0}}dn.exact=\"{SYNC_DN}\" size=unlimited time=unlimited
olcLimits: {{1}}dn.exact=\"{ADMIN_DN}\" size=unlimited time=unlimited
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact=\"{SYNC_DN}\" read by dn.exact=\"{LIMITED_DN}\" read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member

dn: olcOverlay={{2}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{2}}syncprov
olcSpSessionlog: 1000
"
    )
}

/// A start failed because one of the ports was taken; holds slapd's log.
struct PortTaken(String);

const BASE_LDIF: &str = "dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=test
objectClass: organizationalUnit
ou: services

dn: cn=sync,ou=services,dc=example,dc=test
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: sync
userPassword: sync-password

dn: cn=limited,ou=services,dc=example,dc=test
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: limited
userPassword: limited-password
";

impl Slapd {
    /// Starts a fresh slapd with the base entries; panics with a clear message
    /// when slapd, ldap-utils or openssl are missing.
    pub fn start() -> Slapd {
        if !Path::new(SLAPD).exists() || !Path::new(SLAPADD).exists() {
            panic!(
                "{SLAPD} (or slapadd) is missing: the LDAP tests need OpenLDAP; run \
                 scripts/install-deps as root (apt-get install slapd ldap-utils)"
            );
        }
        require("ldapadd");
        let dir = tempfile::Builder::new()
            .prefix("orgsync-slapd-")
            .tempdir()
            .expect("temp dir");
        let p = dir.path();
        std::fs::create_dir_all(p.join("slapd.d")).expect("mkdir slapd.d");
        std::fs::create_dir_all(p.join("data")).expect("mkdir data");
        make_certs(p);
        std::fs::write(p.join("config.ldif"), config_ldif(p)).expect("write config.ldif");
        run(
            Command::new(SLAPADD).args([
                "-n",
                "0",
                "-F",
                &p.join("slapd.d").display().to_string(),
                "-l",
                &p.join("config.ldif").display().to_string(),
            ]),
            "slapadd (cn=config)",
        );
        let mut s = Slapd {
            dir,
            port: 0,
            tls_port: 0,
            child: None,
            held: Vec::new(),
        };
        for attempt in 1..=START_ATTEMPTS {
            s.port = candidate_port(0);
            s.tls_port = candidate_port(s.port);
            match s.spawn() {
                Ok(()) => break,
                Err(PortTaken(log)) if attempt == START_ATTEMPTS => panic!(
                    "slapd found its ports taken {START_ATTEMPTS} times in a row; last log:\n{log}"
                ),
                Err(PortTaken(_)) => {}
            }
        }
        s.ldapadd(BASE_LDIF);
        s
    }

    /// Starts slapd on `self.port` and `self.tls_port` and waits until it
    /// answers a search; `PortTaken` when one of them was taken.
    fn spawn(&mut self) -> Result<(), PortTaken> {
        let p = self.dir.path();
        let log_path = p.join("slapd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("slapd.log");
        let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(SLAPD)
            .args([
                // Only the messages slapd always logs (a failed bind among them).
                "-d",
                "none",
                "-F",
                &p.join("slapd.d").display().to_string(),
                "-h",
                &format!("{} {}", self.url(), self.ldaps_url()),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SLAPD}: {e}"));
        self.child = Some(child);
        let (url, port) = (self.url(), self.port);
        let child = self.child.as_mut().expect("child");
        let this_start = || {
            let all = std::fs::read(&log_path).unwrap_or_default();
            String::from_utf8_lossy(all.get(log_len as usize..).unwrap_or_default()).into_owned()
        };
        let exited: Option<ExitStatus> = wait_for_blocking(
            &format!("slapd to answer on {url}"),
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(Some(status));
                }
                let answers = TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && Command::new("ldapsearch")
                        .args(["-x", "-H", &url, "-b", "", "-s", "base"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success());
                answers.then_some(None)
            },
        );
        let Some(status) = exited else {
            return Ok(());
        };
        self.child = None;
        let log = this_start();
        if log.contains("Address already in use") {
            return Err(PortTaken(log));
        }
        panic!("slapd exited ({status}) at start:\n{log}");
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS available).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// The PEM of the CA that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The data directory (temp, removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn admin(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args([
            "-x",
            "-H",
            &self.url(),
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ]);
        c
    }

    /// Adds entries as the admin (overlays run: memberOf is maintained).
    pub fn ldapadd(&self, ldif: &str) {
        if let Err(e) = run_stdin(&mut self.admin("ldapadd"), ldif, "ldapadd") {
            panic!("{e}");
        }
    }

    /// Applies an LDIF of changes (`changetype: modify` etc.) as the admin.
    pub fn ldapmodify(&self, ldif: &str) {
        if let Err(e) = run_stdin(&mut self.admin("ldapmodify"), ldif, "ldapmodify") {
            panic!("{e}");
        }
    }

    /// Deletes one entry as the admin.
    pub fn delete(&self, dn: &str) {
        run(self.admin("ldapdelete").arg(dn), "ldapdelete");
    }

    /// SIGKILLs slapd (data stays for `restart`). Its ports are then held
    /// closed: a client gets "connection refused", and no other process can
    /// be handed them before `restart`.
    pub fn kill(&mut self) {
        self.stop();
        if self.held.is_empty() {
            self.held = [self.port, self.tls_port]
                .map(|port| {
                    ClosedPort::hold(port).unwrap_or_else(|e| {
                        panic!(
                            "port {port} of the killed slapd was taken before it could be held: {e}"
                        )
                    })
                })
                .into();
        }
    }

    /// Kills and reaps slapd. Also runs in `Drop`, so it reports instead of
    /// panicking: `kill` fails only when slapd already exited (what is wanted),
    /// and `wait` cannot fail on a child that was spawned and not yet reaped.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.kill() {
                eprintln!("slapd had already exited: {e}");
            }
            if let Err(e) = child.wait() {
                eprintln!("cannot reap slapd: {e}");
            }
        }
    }

    /// Starts slapd again on the same data and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.held.clear();
        if let Err(PortTaken(log)) = self.spawn() {
            panic!("the ports of slapd were taken while it was down:\n{log}");
        }
    }

    /// Runs `scripts/gen-ldap-data` and loads its LDIF with ldapadd (so the
    /// memberOf overlay runs). Returns the LDIF's entry count.
    pub fn load_generated(&self, users: usize, groups: usize, nesting: bool) -> usize {
        let script = repo_root().join("scripts/gen-ldap-data");
        let mut cmd = Command::new("python3");
        cmd.arg(&script).args([
            "--users",
            &users.to_string(),
            "--groups",
            &groups.to_string(),
        ]);
        if nesting {
            cmd.arg("--nesting");
        }
        let ldif = run(&mut cmd, "scripts/gen-ldap-data");
        let file = self.dir.path().join("generated.ldif");
        std::fs::write(&file, &ldif).expect("write generated.ldif");
        run(
            self.admin("ldapadd").arg("-f").arg(&file),
            "ldapadd (generated data)",
        );
        ldif.split("\n\n")
            .filter(|e| e.trim_start().starts_with("dn:"))
            .count()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The DN of a user under `ou=people`.
pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE_DN}")
}

/// The DN of a group under `ou=groups`.
pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},{GROUPS_DN}")
}

/// An inetOrgPerson under `ou=people`; `extra` are more `attr: value` lines.
pub fn user_ldif(uid: &str, cn: &str, mail: &str, extra: &[(&str, &str)]) -> String {
    let mut s = format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn}\n",
        user_dn(uid)
    );
    if !mail.is_empty() {
        s.push_str(&format!("mail: {mail}\n"));
    }
    for (a, v) in extra {
        s.push_str(&format!("{a}: {v}\n"));
    }
    s.push('\n');
    s
}

/// A groupOfNames under `ou=groups` (an empty `member` list gets the admin as
/// placeholder member, since `member` is required).
pub fn group_of_names_ldif(cn: &str, member_dns: &[&str]) -> String {
    let mut s = format!(
        "dn: {}\nobjectClass: groupOfNames\ncn: {cn}\n",
        group_dn(cn)
    );
    if member_dns.is_empty() {
        s.push_str(&format!("member: {ADMIN_DN}\n"));
    }
    for m in member_dns {
        s.push_str(&format!("member: {m}\n"));
    }
    s.push('\n');
    s
}

/// A posixGroup under `ou=groups`.
pub fn posix_group_ldif(cn: &str, gid: u32, member_uids: &[&str]) -> String {
    let mut s = format!(
        "dn: {}\nobjectClass: posixGroup\ncn: {cn}\ngidNumber: {gid}\n",
        group_dn(cn)
    );
    for m in member_uids {
        s.push_str(&format!("memberUid: {m}\n"));
    }
    s.push('\n');
    s
}
