//! A port side, below the pipeline and the ALG stream engine, which both name it.

use cgnat_config::Role;

/// A port side: index 0 inside, 1 outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The subscribers' side.
    Inside = 0,
    /// The internet side.
    Outside = 1,
}

impl Side {
    /// The other side.
    #[inline]
    pub fn other(self) -> Side {
        match self {
            Side::Inside => Side::Outside,
            Side::Outside => Side::Inside,
        }
    }
    /// From a config role.
    pub fn of(role: Role) -> Side {
        match role {
            Role::Inside => Side::Inside,
            Role::Outside => Side::Outside,
        }
    }
}
