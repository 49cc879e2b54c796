//! Reading a knowledge-base folder: which files become documents, their front matter, and why others are skipped.

use std::fmt;
use std::path::{Path, PathBuf};

use closer_model::{Audience, DocumentFormat, KnowledgeDocument, Lang};
use sha2::{Digest, Sha256};

use crate::KnowledgeError;

/// The documents of a knowledge-base folder, the files that were left out, and the documents
/// with a mistake that must be fixed before the folder is imported.
#[derive(Debug, Clone, Default)]
pub struct ScannedKnowledgeBase {
    pub documents: Vec<KnowledgeDocument>,
    pub skipped: Vec<SkippedFile>,
    /// Knowledge documents that cannot be read as meant (an unknown audience): importing the
    /// folder without them would silently drop or expose them, so importers refuse it.
    pub invalid: Vec<SkippedFile>,
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
    /// The front matter names an audience other than `public` or `internal`. A document meant
    /// for the sales team must never fall back to public because of a typo, so the file is
    /// refused instead: `closer kb import` stops, and the console's upload says why.
    UnknownAudience(String),
    /// The front matter gives two different audiences.
    ConflictingAudience(Audience, Audience),
}

impl SkipReason {
    /// Whether the file is a knowledge document with a mistake in it (to be fixed, not left
    /// out): `closer kb import` refuses to import the folder while such a file is in it.
    pub fn is_invalid_document(&self) -> bool {
        matches!(
            self,
            SkipReason::UnknownAudience(_) | SkipReason::ConflictingAudience(..)
        )
    }
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
            SkipReason::UnknownAudience(value) => write!(
                formatter,
                "unknown audience {value:?} in the front matter; use public or internal"
            ),
            SkipReason::ConflictingAudience(first, second) => write!(
                formatter,
                "the front matter gives two audiences, {} and {}; keep one",
                first.as_str(),
                second.as_str()
            ),
        }
    }
}

/// Reads a KB folder recursively: `*.md` / `*.markdown` (optional front matter), `*.txt`, `*.csv`.
///
/// Other, unreadable, non-UTF-8 and empty files are skipped with a reason, never an error;
/// documents with a mistake in their front matter (an unknown audience) are listed in
/// [`ScannedKnowledgeBase::invalid`] with the reason. `progress(done, total)` is called as
/// files are read. Documents are sorted by source.
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
                Err(reason) if reason.is_invalid_document() => {
                    scanned.invalid.push(SkippedFile {
                        path: path.clone(),
                        reason: reason.to_string(),
                    });
                }
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
    if let Some(mistake) = front.mistake {
        return Err(mistake);
    }
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
    /// A value that cannot be taken as written (an unknown audience): the file is refused.
    pub mistake: Option<SkipReason>,
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
            "audience" => match (Audience::parse(value), front.audience) {
                (Some(audience), Some(earlier)) if audience != earlier => {
                    front.mistake = Some(SkipReason::ConflictingAudience(earlier, audience));
                }
                (Some(audience), _) => front.audience = Some(audience),
                (None, _) => front.mistake = Some(SkipReason::UnknownAudience(value.to_string())),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_audience_refuses_the_file_instead_of_making_it_public() {
        let refused = parse_document(
            "notes/discounts.md",
            b"---\ntitle: Discounts\naudience: internl\n---\nUp to 15 percent without approval.\n",
        );
        assert_eq!(
            refused,
            Err(SkipReason::UnknownAudience("internl".to_owned()))
        );
        assert_eq!(
            refused.expect_err("refused").to_string(),
            "unknown audience \"internl\" in the front matter; use public or internal"
        );
        for value in ["\"\"", "private", "team only"] {
            let text = format!("---\naudience: {value}\n---\nSome words.\n");
            assert!(
                matches!(
                    parse_document("x.md", text.as_bytes()),
                    Err(SkipReason::UnknownAudience(_))
                ),
                "{value}"
            );
        }
        let twice = parse_document(
            "x.md",
            b"---\naudience: internal\naudience: public\n---\nSome words.\n",
        );
        assert_eq!(
            twice,
            Err(SkipReason::ConflictingAudience(
                Audience::Internal,
                Audience::Public
            ))
        );
        // Known values, in any case or quoting, still read as written.
        for (value, audience) in [
            ("internal", Audience::Internal),
            ("'Internal'", Audience::Internal),
            ("PUBLIC", Audience::Public),
        ] {
            let text = format!("---\naudience: {value}\n---\nSome words.\n");
            let document = parse_document("x.md", text.as_bytes()).expect(value);
            assert_eq!(document.audience, audience, "{value}");
        }
    }

    #[test]
    fn a_folder_with_an_unknown_audience_lists_the_file_and_its_value() {
        let dir = std::env::temp_dir().join(format!(
            "closer-audience-{}-{}",
            std::process::id(),
            line!()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        std::fs::write(dir.join("prices.md"), "# Prices\n\nPro costs 10.\n").expect("written");
        std::fs::write(
            dir.join("notes.md"),
            "---\naudience: sales-only\n---\nOur margin is 40 percent.\n",
        )
        .expect("written");
        let scanned = read_dir(&dir, |_, _| {});
        let _ = std::fs::remove_dir_all(&dir);
        let scanned = scanned.expect("the folder reads");
        let sources: Vec<&str> = scanned
            .documents
            .iter()
            .map(|document| document.source.as_str())
            .collect();
        assert_eq!(sources, ["prices.md"]);
        assert!(scanned.skipped.is_empty(), "{:?}", scanned.skipped);
        assert_eq!(scanned.invalid.len(), 1, "{:?}", scanned.invalid);
        assert!(scanned.invalid[0].path.ends_with("notes.md"));
        assert!(
            scanned.invalid[0].reason.contains("\"sales-only\""),
            "{:?}",
            scanned.invalid[0]
        );
    }
}
