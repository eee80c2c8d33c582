//! A private, throwaway PostgreSQL cluster per test: a
//! [`kastell_pg::Cluster`] (initdb into a temporary directory, unix socket
//! only, `trust`, stopped and removed on drop) with the roles and
//! databases the platforms use (`coolify` and `dokploy`, each a LOGIN
//! SUPERUSER owning a database of the same name). The socket directory is
//! reachable by every user, so the sandbox sshd's login user connects
//! through it.

use std::ops::{Deref, DerefMut};

use kastell_core::Result;
use kastell_pg::Cluster;

pub use kastell_pg::is_root;

/// The roles (and databases of the same name) every cluster provides.
pub const PLATFORM_ROLES: &[&str] = &["coolify", "dokploy"];

/// A running private PostgreSQL cluster with the platform roles. Dropping
/// it stops the server.
#[derive(Debug)]
pub struct PgCluster(Cluster);

impl PgCluster {
    /// Starts a cluster on the newest server installed and creates the
    /// platform roles and databases ([`PLATFORM_ROLES`]). Fails as
    /// [`Cluster::start`] does, or when creating them fails.
    pub fn start() -> Result<Self> {
        let cluster = Cluster::start()?;
        let sql: String = PLATFORM_ROLES
            .iter()
            .map(|role| {
                format!(
                    "CREATE ROLE {role} LOGIN SUPERUSER;\nCREATE DATABASE {role} OWNER {role};\n"
                )
            })
            .collect();
        cluster.execute("postgres", &sql)?;
        Ok(Self(cluster))
    }
}

impl Deref for PgCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.0
    }
}

impl DerefMut for PgCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.0
    }
}
