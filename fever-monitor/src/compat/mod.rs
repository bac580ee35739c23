//! Everything that differs between the Python versions fever runs on (3.12 to 3.15), one module
//! per concern, the way py-spy keeps its per-version bindings apart. Nothing outside this module
//! tests a Python version or declares a C-API function pyo3-ffi lacks.
//!
//! - [`capi`]: C-API functions and constants pyo3-ffi 0.30 does not declare (function watchers,
//!   audit hooks, `co_extra`, `co_flags` bits), the same on every supported version.
//! - [`unicode`]: reading a `str`'s characters in place (3.14 hid the `state` bit field).
//! - [`monitoring`]: the sys.monitoring facts fever relies on (tool ids, event bits, freeing an
//!   id, `DISABLE`) and what each version changed.
//! - [`annotations`]: 3.14's lazily evaluated annotations: `__annotate__` functions are not user
//!   calls, and a reload copies annotations without evaluating them.

pub mod annotations;
pub mod capi;
pub mod monitoring;
pub mod unicode;

pub use capi::*;
pub use monitoring::TOOL_IDS;
