//! The page in Chromium (stub).
