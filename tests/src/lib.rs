//! End-to-end tests of beckon live in `tests/`; this crate has no library code.
