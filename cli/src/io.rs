//! Reading secrets and data from stdin, writing to stdout.

use std::io::{Read, Write};
use zeroize::Zeroizing;

/// All of stdin, in a buffer that is wiped when dropped.
pub fn read_stdin() -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin().lock().read_to_end(&mut buf)?;
    Ok(buf)
}

/// Writes bytes to stdout and flushes.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
