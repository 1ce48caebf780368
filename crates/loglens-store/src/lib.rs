//! The loglens data directory (stub).
