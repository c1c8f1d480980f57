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
///
/// A FIFO (a named pipe) blocks until something writes to it, as `cat` does; after
/// [`FIFO_NOTICE_S`] without a writer a line on stderr says what it is waiting for, so that a
/// forgotten pipe is not mistaken for a hang. Process substitution (`estimate <(gen)`) has its
/// writer already and says nothing.
pub fn read_text(path: &std::path::Path, invalid: impl FnOnce(String) -> Error) -> Result<String, Error> {
    let waiting = is_fifo(path).then(|| {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let name = path.display().to_string();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                wait.recv_timeout(std::time::Duration::from_secs_f64(FIFO_NOTICE_S))
            {
                eprintln!("waiting for a writer on {name}, a FIFO: the read blocks until something writes to it and closes it");
            }
        });
        done
    });
    let read = std::fs::read(path);
    drop(waiting);
    let bytes = read.map_err(|e| Error::Io {
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

/// Seconds a read of a FIFO waits for a writer before it says so on stderr.
pub const FIFO_NOTICE_S: f64 = 1.0;

#[cfg(unix)]
fn is_fifo(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(not(unix))]
fn is_fifo(_path: &std::path::Path) -> bool {
    false
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

/// " (did you mean `x`?)" where one of `known` is close to `given` (a typo, a case slip, a
/// missing dash), else "". Closeness is Jaro-Winkler similarity of at least 0.85 on the
/// lower-cased names (strsim), the measure cargo and clap use for the same message.
pub fn did_you_mean<S: AsRef<str>>(given: &str, known: impl IntoIterator<Item = S>) -> String {
    let given_lower = given.to_lowercase();
    known
        .into_iter()
        .map(|k| {
            let k = k.as_ref().to_string();
            (strsim::jaro_winkler(&given_lower, &k.to_lowercase()), k)
        })
        .filter(|(score, k)| *score >= 0.85 && k != given)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn a_typo_gets_the_closest_name_and_a_stranger_nothing() {
        let known = ["llama3-70b", "llama3-405b", "mixtral-8x7b"];
        assert_eq!(did_you_mean("lama3-70b", known), " (did you mean `llama3-70b`?)");
        assert_eq!(
            did_you_mean("LLAMA3-405B", known),
            " (did you mean `llama3-405b`?)"
        );
        assert_eq!(did_you_mean("gpt2", known), "");
    }
}
