use std::fmt;

/// Why the gateway could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file or environment is unusable; every problem is listed.
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<String>),
    /// The database could not be opened, migrated or used.
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The listen address could not be bound, or the server failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn config(problem: impl Into<String>) -> Self {
        Self::Config(vec![problem.into()])
    }
}

/// Displays an error with its whole `source()` chain: `a: b: c`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}
