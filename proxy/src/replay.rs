//! Forensic replay (in progress).
