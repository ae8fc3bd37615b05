//! End-to-end tests of mend live in `tests/`; this library is empty on purpose.
