//! Private files: the folders credgate creates are 0700 and the files it creates 0600, whatever
//! the umask (the database and its `-wal`/`-shm`, the reset outbox, exports). An existing file
//! readable by others is reported at start and made 0600; an existing folder open to others is
//! reported (folders may be shared with other software, so they are left as they are).

use std::io;
use std::path::{Path, PathBuf};

/// Creates `dir` (and missing parents) as 0700, or reports an existing one open to others.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        if open_to_others(dir) {
            tracing::warn!(
                path = %dir.display(),
                "the data folder is readable by other users; make it 0700 (chmod 700)"
            );
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty as 0600 if it is missing; an existing one readable by others is
/// reported and made 0600.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    if path.exists() {
        return tighten(path);
    }
    match private_options().open(path) {
        Ok(_) => Ok(()),
        // Created meanwhile by someone else: tighten it as an existing one.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(path),
        Err(e) => Err(e),
    }
}

/// Options that create a file as 0600 (appending; the file is not truncated).
pub fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Reports and tightens `path` to 0600 when it exists and others may read or write it.
pub fn tighten(path: &Path) -> io::Result<()> {
    if !open_to_others(path) {
        return Ok(());
    }
    tracing::warn!(
        path = %path.display(),
        "a credgate file was readable by other users; it is now 0600"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// A SQLite database file and its companions (`-wal`, `-shm`, `-journal`).
pub fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// Whether group or others have any permission on `path` (false when it cannot be read).
pub fn open_to_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn created_private_and_existing_ones_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let file = dir.join("db");
        ensure_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        let open = dir.join("open");
        std::fs::write(&open, b"x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(open_to_others(&open));
        ensure_private_file(&open).unwrap();
        assert_eq!(mode(&open), 0o600);
        assert_eq!(std::fs::read(&open).unwrap(), b"x", "never truncated");
    }
}
