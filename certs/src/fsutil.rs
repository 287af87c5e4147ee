//! File-system helpers: a private directory and atomic writes with an
//! explicit permission mode.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::CertError;

/// Mode for private keys.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode for certificates and metadata.
pub(crate) const PUBLIC: u32 = 0o644;

/// Creates `dir` (and missing parents) with mode 0700. An existing
/// directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(CertError::io(dir))
}

/// Replaces `path` with `contents`: writes a fresh temporary file in the
/// same directory with `mode` (on Unix), syncs it and renames it over
/// `path`, so readers never see a half-written file or a key with loose
/// permissions.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(CertError::io(&tmp)(e)),
        _ => {}
    }
    let result = write_new(&tmp, contents, mode)
        .and_then(|()| fs::rename(&tmp, path).map_err(CertError::io(path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(CertError::io(path))?;
    file.write_all(contents).map_err(CertError::io(path))?;
    file.sync_all().map_err(CertError::io(path))
}
