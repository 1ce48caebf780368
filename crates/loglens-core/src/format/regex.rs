//! TODO: user regex formats (stub).
