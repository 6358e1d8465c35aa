//! Integrity: verify and salvage (WIP).
