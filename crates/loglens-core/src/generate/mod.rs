//! TODO: the deterministic log generator (stub).
