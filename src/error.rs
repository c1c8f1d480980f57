//! Errors and the exit codes they map to.
//!
//! Exit codes mean something a script can act on:
//! - 0: success;
//! - 1: the run failed (a file could not be read or written, an internal error);
//! - 2: the input is invalid (command line, scenario file, catalog file, runs CSV): fix it;
//! - 3: a check the user asked for failed (e.g. `validate --max-mape` exceeded).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {origin}: {message}")]
    Scenario { origin: String, message: String },
    #[error("catalog {origin}: {message}")]
    Catalog { origin: String, message: String },
    #[error("runs file {origin}: {message}")]
    Runs { origin: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    CheckFailed(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io { .. } | Error::Internal(_) => 1,
            Error::Scenario { .. } | Error::Catalog { .. } | Error::Runs { .. } | Error::Usage(_) => 2,
            Error::CheckFailed(_) => 3,
        }
    }
}
