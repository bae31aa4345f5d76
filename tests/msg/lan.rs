//! Three members in three namespaces (filled in below).
