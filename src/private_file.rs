//! Files only their owner may read (mode 0600), for secrets the service makes itself: the
//! development admin key and the encryption key file.

use std::io::Write;
use std::path::Path;

/// What to do when the file exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// Fail (`AlreadyExists`): the file holds something that must never be lost.
    Fail,
    /// Replace its content.
    Replace,
}

/// Writes `content` and a newline to `path` (creating its directory), readable by its owner
/// only, and syncs it to disk.
pub fn write(path: &Path, content: &str, if_exists: IfExists) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match if_exists {
        IfExists::Fail => options.create_new(true),
        IfExists::Replace => options.create(true).truncate(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{content}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_keeps_the_first_content_and_replace_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("secret");
        write(&path, "one", IfExists::Fail).unwrap();
        let again = write(&path, "two", IfExists::Fail).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        write(&path, "three", IfExists::Replace).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
