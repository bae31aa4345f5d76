//! Archives (stub).
