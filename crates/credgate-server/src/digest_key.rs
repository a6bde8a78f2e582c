//! The digest key reset tokens and one-time codes are stored under. It must live outside the
//! database (a copy of the database alone then recovers nothing): `CREDGATE_DIGEST_KEY` (hex), or
//! the file `digest_key_file`, generated on first start with mode 0600. Every instance sharing a
//! database must use the same key: give them the same variable, or copy the file.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use credgate_core::token::DigestKey;

use crate::settings::Settings;

pub fn load(settings: &Settings) -> Result<DigestKey, String> {
    if let Some(hex) = &settings.digest_key {
        return DigestKey::from_hex(hex.expose()).map_err(|e| format!("digest_key: {e}"));
    }
    let path = settings.digest_key_file.as_path();
    // Another instance may be writing it right now: an empty file is read again shortly.
    for _ in 0..40 {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => std::thread::sleep(Duration::from_millis(25)),
            Ok(text) => {
                warn_if_readable_by_others(path);
                return DigestKey::from_hex(&text)
                    .map_err(|e| format!("digest_key_file {}: {e}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create(path)? {
                Some(key) => return Ok(key),
                None => continue,
            },
            Err(e) => return Err(format!("digest_key_file {}: {e}", path.display())),
        }
    }
    Err(format!("digest_key_file {} stays empty", path.display()))
}

/// Writes a new key; `None` when another process created the file first.
fn create(path: &Path) -> Result<Option<DigestKey>, String> {
    let fail = |e: std::io::Error| format!("digest_key_file {}: {e}", path.display());
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let key = DigestKey::generate();
    file.write_all(key.to_hex().as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    tracing::info!(path = %path.display(), "generated the digest key of reset tokens and codes; instances sharing this database need the same key");
    Ok(Some(key))
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the digest key file is readable by group or others; chmod 600 it");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            digest_key_file: dir.path().join("data").join("digest.key"),
            ..Settings::default()
        };
        let first = load(&settings).unwrap();
        let second = load(&settings).unwrap();
        assert_eq!(first.digest("12345678"), second.digest("12345678"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&settings.digest_key_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let hex = "ab".repeat(32);
        let from_env = Settings {
            digest_key: Some(credgate_core::SecretToken::new(hex.clone())),
            ..settings
        };
        assert_eq!(
            load(&from_env).unwrap().digest("x"),
            DigestKey::from_hex(&hex).unwrap().digest("x")
        );
    }
}
