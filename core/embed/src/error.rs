//! The errors of loading a model file: nothing in a file read from disk may panic the process.

use std::path::PathBuf;

/// Why a model could not be loaded. Embedding itself cannot fail once a model is loaded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read the model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not an e5 model file: the magic is not \"E5S1\"")]
    BadMagic,
    #[error("the model file is truncated: {0}")]
    Truncated(String),
    #[error("the model file is corrupt: {0}")]
    Corrupt(String),
    #[error("the model file has no tensor {0:?}")]
    MissingTensor(String),
}
