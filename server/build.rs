//! Records the commit the binary is built from (`GET /api/v2/buildinfo`,
//! `orgsync --version`): `git rev-parse HEAD`, or `unknown` outside a git
//! checkout. `ORGSYNC_COMMIT` in the build's environment wins (packagers).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ORGSYNC_COMMIT");
    let commit = std::env::var("ORGSYNC_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let text = text.trim();
        (out.status.success() && !text.is_empty()).then(|| text.to_owned())
    });
    // A new commit changes HEAD or the branch it points to.
    let git_dir = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|dir| dir.trim().to_owned())
        .filter(|dir| !dir.is_empty());
    if let Some(dir) = git_dir {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
    }
    println!(
        "cargo:rustc-env=ORGSYNC_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_owned())
    );
}
