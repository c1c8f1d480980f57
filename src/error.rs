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

/// The text of the file at `path`: an I/O error (exit 1) if it cannot be read, and the error
/// `invalid` builds (an input error, exit 2) naming the line if it is not UTF-8.
pub fn read_text(path: &std::path::Path, invalid: impl FnOnce(String) -> Error) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        invalid(format!(
            "line {line} is not valid UTF-8 (byte {} of the file): save it as UTF-8",
            at + 1
        ))
    })
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
