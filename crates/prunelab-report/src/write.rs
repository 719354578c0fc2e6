//! Writing files atomically: a temporary file beside the target, then a rename, so a reader
//! never sees half a file (the Burn-free twin of `prunelab_prune::file::write_atomic`).

use std::path::Path;

use crate::error::{Error, Result};

/// Write `data` to `path` atomically, creating its directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    // On failure (a full disk, say) no temporary file is left behind and `path` is untouched.
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { path: path.to_owned(), source }
    })
}
