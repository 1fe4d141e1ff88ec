//! Template archives: tar files checked on upload, extracted safely by the
//! executors, and built from a directory by `orgsync templates push`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest upload (`POST /files`).
pub const MAX_ARCHIVE_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the body is not a tar archive: {0}")]
    NotTar(String),
    #[error("the archive is empty")]
    Empty,
    #[error("entry `{0}` escapes the archive (absolute path or `..`)")]
    Traversal(String),
    #[error("entry `{0}` is a link; links are not allowed in templates")]
    Link(String),
    #[error("entry `{0}` has an unsupported type")]
    Unsupported(String),
    #[error("cannot extract: {0}")]
    Io(String),
}

fn safe_relative(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Entries of a checked archive: relative path and whether it is a directory.
pub fn check(bytes: &[u8]) -> Result<Vec<(PathBuf, bool)>, ArchiveError> {
    // A tar is a sequence of 512-byte blocks; anything else is not one.
    if bytes.len() < 512 || !bytes.len().is_multiple_of(512) {
        return Err(ArchiveError::NotTar(
            "its size is not a multiple of 512 bytes".to_owned(),
        ));
    }
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::NotTar(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| ArchiveError::NotTar(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| ArchiveError::NotTar(e.to_string()))?
            .into_owned();
        let shown = path.display().to_string();
        if !safe_relative(&path) {
            return Err(ArchiveError::Traversal(shown));
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(ArchiveError::Link(shown));
        }
        if kind.is_dir() {
            out.push((path, true));
        } else if kind.is_file() {
            out.push((path, false));
        } else if !(kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname())
        {
            return Err(ArchiveError::Unsupported(shown));
        }
    }
    if !out.iter().any(|(_, dir)| !dir) {
        return Err(ArchiveError::Empty);
    }
    Ok(out)
}

/// Extracts a checked archive into `dir`.
pub fn extract(bytes: &[u8], dir: &Path) -> Result<(), ArchiveError> {
    check(bytes)?;
    let mut archive = tar::Archive::new(bytes);
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Io(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Io(e.to_string()))?;
        let rel = entry
            .path()
            .map_err(|e| ArchiveError::Io(e.to_string()))?
            .into_owned();
        let target = dir.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| ArchiveError::Io(e.to_string()))?;
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ArchiveError::Io(e.to_string()))?;
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| ArchiveError::Io(e.to_string()))?;
            std::fs::write(&target, data).map_err(|e| ArchiveError::Io(e.to_string()))?;
        }
    }
    Ok(())
}

/// Builds a tar of the files under `dir` (relative paths, sorted, no links,
/// skipping `.terraform`, `.git` and Terraform state files).
pub fn pack_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for rel in files {
        let data = std::fs::read(dir.join(&rel))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, &rel, data.as_slice())?;
    }
    builder.into_inner()
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == ".terraform"
            || name == ".git"
            || name.starts_with("terraform.tfstate")
            || name == ".terraform.lock.hcl"
        {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push(
                path.strip_prefix(root)
                    .map_err(std::io::Error::other)?
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Write the raw name so that unsafe names reach the archive.
        let bytes = header.as_old_mut().name.as_mut();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, data).ok();
        builder.into_inner().unwrap_or_default()
    }

    #[test]
    fn accepts_plain_archives_and_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("main.tf"), "# hi")?;
        std::fs::write(dir.path().join("sub/x.txt"), "x")?;
        std::fs::write(dir.path().join("terraform.tfstate"), "{}")?;
        let bytes = pack_dir(dir.path())?;
        let entries = check(&bytes)?;
        let names: Vec<String> = entries
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(names, vec!["main.tf", "sub/x.txt"]);
        let out = tempfile::tempdir()?;
        extract(&bytes, out.path())?;
        assert_eq!(std::fs::read_to_string(out.path().join("sub/x.txt"))?, "x");
        // Deterministic: same dir, same bytes.
        assert_eq!(pack_dir(dir.path())?, bytes);
        Ok(())
    }

    #[test]
    fn refuses_traversal_garbage_and_empty() {
        assert!(matches!(
            check(&tar_with("../evil", b"x")),
            Err(ArchiveError::Traversal(_))
        ));
        assert!(matches!(
            check(&tar_with("/etc/passwd", b"x")),
            Err(ArchiveError::Traversal(_))
        ));
        assert!(matches!(check(b"hello"), Err(ArchiveError::NotTar(_))));
        assert!(matches!(
            check(&[7u8; 1024]),
            Err(ArchiveError::NotTar(_)) | Err(ArchiveError::Empty)
        ));
        assert_eq!(check(&[0u8; 1024]), Err(ArchiveError::Empty));
    }
}
