//! Writes generated logs to a directory (stub).
