//! Output files that may hold PHI (decrypted streams, tokenized CSV) or must not be torn
//! (encrypted streams, the vault header): written under an unpredictable temporary name beside
//! their destination, then renamed into place.
//!
//! The temporary file is created exclusively (`O_CREAT | O_EXCL`), without following a
//! symbolic link (`O_NOFOLLOW`), readable by its owner only (0600): a link or file planted
//! in a shared folder never receives the data. [`PrivateOutput::commit`] syncs the file,
//! renames it over the destination and syncs the directory, so a crash at any point leaves
//! either the old destination or the complete new one. An output dropped before it is
//! committed removes its temporary file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Attempts at an unused temporary name before giving up (each name has 96 random bits).
const NAME_ATTEMPTS: usize = 8;

/// A file being written under a temporary name, renamed to its destination on
/// [`PrivateOutput::commit`].
#[derive(Debug)]
pub struct PrivateOutput {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl PrivateOutput {
    /// Creates the temporary file beside `dest` (see the module documentation).
    pub fn create(dest: &Path) -> io::Result<PrivateOutput> {
        let dir = parent(dest);
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output has no file name")
        })?;
        for _ in 0..NAME_ATTEMPTS {
            let mut rnd = [0u8; 12];
            crate::random::fill_random(&mut rnd)
                .map_err(|_| io::Error::other("no randomness for a temporary name"))?;
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{}.partial", hex::encode(rnd)));
            let tmp = dir.join(tmp_name);
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
            }
            match o.open(&tmp) {
                Ok(file) => {
                    return Ok(PrivateOutput {
                        file: Some(file),
                        tmp,
                        dest: dest.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no unused temporary name beside the output",
        ))
    }

    /// The open temporary file.
    pub fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("output already committed"))
    }

    /// Takes the open temporary file out (to hand to a writer); give it back to
    /// [`PrivateOutput::commit_file`].
    pub fn take_file(&mut self) -> io::Result<File> {
        self.file
            .take()
            .ok_or_else(|| io::Error::other("output already taken"))
    }

    /// The temporary file's path.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Syncs the file, renames it over the destination and syncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.take_file()?;
        self.commit_file(file)
    }

    /// [`PrivateOutput::commit`] with the file taken out by [`PrivateOutput::take_file`].
    pub fn commit_file(mut self, file: File) -> io::Result<()> {
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        // Renamed: nothing to remove on drop any more.
        self.tmp = PathBuf::new();
        sync_dir(parent(&self.dest))
    }
}

impl Drop for PrivateOutput {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically and durably (see the module documentation).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut out = PrivateOutput::create(path)?;
    out.file()?.write_all(bytes)?;
    out.commit()
}

/// Syncs a directory, so that a rename or creation in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// [`write_atomic`] with the error of the vault: the action names the file.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    write_atomic(path, bytes)
        .map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_atomically_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("out.txt");
        write_atomic(&dest, b"one").expect("write");
        assert_eq!(std::fs::read(&dest).expect("read"), b"one");
        {
            let mut o = PrivateOutput::create(&dest).expect("create");
            std::io::Write::write_all(o.file().expect("file"), b"half").expect("w");
            // dropped uncommitted
        }
        assert_eq!(std::fs::read(&dest).expect("read"), b"one");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(left.len(), 1, "the temporary file is removed");
    }

    #[cfg(unix)]
    #[test]
    fn temp_files_are_private_and_unpredictable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("out.txt");
        let a = PrivateOutput::create(&dest).expect("a");
        let b = PrivateOutput::create(&dest).expect("b");
        assert_ne!(a.temp_path(), b.temp_path());
        let mode = std::fs::metadata(a.temp_path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
