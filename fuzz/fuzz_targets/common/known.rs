//! Known bugs the targets step around so that a long run keeps finding new problems.
//! Set `DICOMTAP_FUZZ_KNOWN_BUGS=1` to stop stepping around them, e.g. to check that the
//! reproducers in fuzz/regressions/<target>/ pass after a fix:
//!
//!     DICOMTAP_FUZZ_KNOWN_BUGS=1 cargo +nightly fuzz run statement fuzz/regressions/statement/*

use std::sync::OnceLock;

/// True when known bugs are to be stepped around (the default).
pub fn avoid() -> bool {
    static AVOID: OnceLock<bool> = OnceLock::new();
    *AVOID.get_or_init(|| std::env::var_os("DICOMTAP_FUZZ_KNOWN_BUGS").is_none())
}
