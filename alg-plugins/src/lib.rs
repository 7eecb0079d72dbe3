//! ALG plugins (contract first).
