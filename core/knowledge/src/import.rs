//! Reading a knowledge-base folder: which files become documents, their front matter, and why others are skipped.

use std::fmt;
use std::path::{Path, PathBuf};

use closer_model::{Audience, DocumentFormat, KnowledgeDocument, Lang};
use sha2::{Digest, Sha256};

use crate::KnowledgeError;

/// The documents of a knowledge-base folder, and the files that were left out.
#[derive(Debug, Clone, Default)]
pub struct ScannedKnowledgeBase {
    pub documents: Vec<KnowledgeDocument>,
    pub skipped: Vec<SkippedFile>,
}

/// A file that is not part of the knowledge base, with the reason shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// Why one file's bytes do not make a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not `.md`, `.markdown`, `.txt` or `.csv`.
    UnsupportedExtension(String),
    /// The bytes are not valid UTF-8 (a Windows-1251 export, a binary file).
    NotUtf8,
    /// Nothing but whitespace (or only front matter).
    Empty,
    /// A CSV file without a header row and at least one data row, or one the parser rejects.
    InvalidCsv(String),
    /// The file could not be read from disk.
    Unreadable(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::UnsupportedExtension(extension) if extension.is_empty() => {
                write!(
                    formatter,
                    "unsupported file type (no extension); use .md, .txt or .csv"
                )
            }
            SkipReason::UnsupportedExtension(extension) => {
                write!(
                    formatter,
                    "unsupported file type .{extension}; use .md, .txt or .csv"
                )
            }
            SkipReason::NotUtf8 => write!(formatter, "not UTF-8 text; save the file as UTF-8"),
            SkipReason::Empty => write!(formatter, "empty file"),
            SkipReason::InvalidCsv(why) => write!(formatter, "invalid CSV: {why}"),
            SkipReason::Unreadable(why) => write!(formatter, "cannot read the file: {why}"),
        }
    }
}

/// Reads a KB folder recursively: `*.md` / `*.markdown` (optional front matter), `*.txt`, `*.csv`.
///
/// Other, unreadable, non-UTF-8 and empty files are skipped with a reason, never an error.
/// `progress(done, total)` is called as files are read. Documents are sorted by source.
///
/// # Errors
/// [`KnowledgeError::Folder`] when `dir` itself cannot be listed.
pub fn read_dir(
    dir: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<ScannedKnowledgeBase, KnowledgeError> {
    let mut files = Vec::new();
    let mut scanned = ScannedKnowledgeBase::default();
    collect_files(dir, &mut files, &mut scanned.skipped, true)?;
    files.sort();
    let total = files.len();
    progress(0, total);
    for (index, path) in files.iter().enumerate() {
        let source = relative_source(dir, path);
        match std::fs::read(path) {
            Ok(bytes) => match parse_document(&source, &bytes) {
                Ok(document) => scanned.documents.push(document),
                Err(reason) => scanned.skipped.push(SkippedFile {
                    path: path.clone(),
                    reason: reason.to_string(),
                }),
            },
            Err(error) => scanned.skipped.push(SkippedFile {
                path: path.clone(),
                reason: SkipReason::Unreadable(error.to_string()).to_string(),
            }),
        }
        progress(index + 1, total);
    }
    Ok(scanned)
}

fn collect_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<SkippedFile>,
    is_root: bool,
) -> Result<(), KnowledgeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if is_root => {
            return Err(KnowledgeError::Folder {
                path: dir.to_path_buf(),
                reason: error.to_string(),
            })
        }
        Err(error) => {
            skipped.push(SkippedFile {
                path: dir.to_path_buf(),
                reason: SkipReason::Unreadable(error.to_string()).to_string(),
            });
            return Ok(());
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            // Editor swap files and `.git` are never knowledge.
            continue;
        }
        if path.is_dir() {
            collect_files(&path, files, skipped, false)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn relative_source(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// One file's bytes to a document; `source` is the path relative to the KB folder with `/` separators.
///
/// # Errors
/// The [`SkipReason`] when the file is not a knowledge document.
pub fn parse_document(source: &str, bytes: &[u8]) -> Result<KnowledgeDocument, SkipReason> {
    let extension = source
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_lowercase())
        .unwrap_or_default();
    let format = match extension.as_str() {
        "md" | "markdown" => DocumentFormat::Markdown,
        "txt" => DocumentFormat::Text,
        "csv" => DocumentFormat::Csv,
        _ => return Err(SkipReason::UnsupportedExtension(extension)),
    };
    let content = std::str::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)?;
    // A byte-order mark from Windows editors is not text.
    let content = content
        .strip_prefix('\u{feff}')
        .unwrap_or(content)
        .to_string();
    let front_matter = if format == DocumentFormat::Markdown {
        split_front_matter(&content)
    } else {
        (FrontMatter::default(), content.as_str())
    };
    let (front, body) = front_matter;
    if body.trim().is_empty() {
        return Err(SkipReason::Empty);
    }
    if format == DocumentFormat::Csv {
        validate_csv(body)?;
    }
    let file_stem = source
        .rsplit('/')
        .next()
        .unwrap_or(source)
        .rsplit_once('.')
        .map_or(source, |(stem, _)| stem);
    let title = front
        .title
        .clone()
        .or_else(|| first_heading(body))
        .unwrap_or_else(|| file_stem.replace(['-', '_'], " "));
    let lang = front.lang.or_else(|| Lang::detect(body));
    let content_hash = Sha256::digest(content.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(KnowledgeDocument {
        source: source.to_string(),
        title,
        lang,
        audience: front.audience.unwrap_or_default(),
        tags: front.tags,
        format,
        content,
        content_hash,
    })
}

/// The fields of a Markdown front matter this crate understands; other keys are ignored.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FrontMatter {
    pub title: Option<String>,
    pub lang: Option<Lang>,
    pub tags: Vec<String>,
    pub audience: Option<Audience>,
}

/// Splits `---` front matter from the body. Without a closing `---` the whole text is the body.
///
/// The format is the simple `key: value` subset every KB tool writes; a YAML crate would accept
/// much more than we could use, so ten lines of parsing are clearer.
pub(crate) fn split_front_matter(content: &str) -> (FrontMatter, &str) {
    let mut front = FrontMatter::default();
    let Some(rest) = content
        .strip_prefix("---\n")
        .or_else(|| content.strip_prefix("---\r\n"))
    else {
        return (front, content);
    };
    let mut offset = 0;
    let mut closed_at = None;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            closed_at = Some(offset + line.len());
            break;
        }
        offset += line.len();
    }
    let Some(body_start) = closed_at else {
        return (front, content);
    };
    for line in rest[..offset].lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim().to_lowercase().as_str() {
            "title" if !value.is_empty() => front.title = Some(value.to_string()),
            "lang" | "language" => front.lang = Lang::parse(value),
            "audience" => front.audience = Audience::parse(value),
            "tags" => {
                front.tags = value
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|tag| unquote(tag.trim()).to_string())
                    .filter(|tag| !tag.is_empty())
                    .collect();
            }
            _ => {}
        }
    }
    (front, &rest[body_start..])
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|inner| inner.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

fn first_heading(body: &str) -> Option<String> {
    body.lines()
        .map(str::trim)
        .find(|line| line.starts_with('#'))
        .map(|line| line.trim_start_matches('#').trim().to_string())
        .filter(|title| !title.is_empty())
}

fn validate_csv(body: &str) -> Result<(), SkipReason> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(body.as_bytes());
    reader
        .headers()
        .map_err(|error| SkipReason::InvalidCsv(error.to_string()))?;
    match reader.records().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(error)) => Err(SkipReason::InvalidCsv(error.to_string())),
        None => Err(SkipReason::InvalidCsv(
            "a header row but no data rows".into(),
        )),
    }
}
