//! WebDAV (stub).
