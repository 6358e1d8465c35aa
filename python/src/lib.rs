//! `phivault._phivault`: the native part of the `phivault` Python package.
//!
//! A thin binding in the manner of pyca/cryptography's Rust crate: it mirrors the Python
//! module, converts arguments and results, releases the GIL around real work, and maps core's
//! errors onto the exception hierarchy defined in Python (`phivault/exceptions.py`). Every rule
//! lives once, in the core `phivault` crate.
//!
//! Build it with maturin (`pip install ./python`); `cargo build` only checks that it compiles.

pub mod arrow;
pub mod convert;
pub mod deid;
pub mod errors;
pub mod jobs;
pub(crate) mod ops;
pub mod session;
pub mod stream;
pub mod tokens;
pub mod vault;

use pyo3::prelude::*;

/// mimalloc rather than glibc malloc: after sled's bulk writes glibc's heap is fragmented and
/// CPU-bound work in the same process ran about 3x slower (`pvbench afterwrites`,
/// benches/notes.md). The library leaves the choice to the application; this module makes it for its own
/// (Rust) allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native module. `phivault/__init__.py` re-exports what users need.
#[pymodule]
fn _phivault(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<vault::PyVault>()?;
    m.add_class::<session::PySession>()?;
    m.add_class::<arrow::PyBatchReport>()?;
    m.add_function(wrap_pyfunction!(jobs::_open_job, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::_open_worker, m)?)?;
    m.add("DETACH_THRESHOLD", convert::DETACH_THRESHOLD)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
