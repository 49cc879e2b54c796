//! Property tests of the knowledge importer: any file's bytes become a document or a skip
//! reason, never a panic; front matter, Markdown and CSV are read as written.

use closer_knowledge::chunk::chunk_document;
use closer_knowledge::{parse_document, SkipReason};
use closer_model::DocumentFormat;
use closer_testing::{cases, nasty_char, nasty_text_with};
use proptest::prelude::*;

/// Markdown's and front matter's syntax, and CSV's.
const MARKDOWN_PIECES: &[&str] = &[
    "---\n",
    "---\r\n",
    "title: ",
    "lang: ru",
    "tags: [a, \"b\"]",
    "audience: internal",
    "\n",
    "# ",
    "## ",
    "- ",
    "* ",
    "1. ",
    "| a | b |\n",
    "|---|---|\n",
    "**",
    "`",
    "\u{feff}",
];
const CSV_PIECES: &[&str] = &["\"", ",", "\n", "\r\n", "\"\"", ";", "\t"];

/// A title for a front matter: one line, no quotes at its ends, not blank.
fn title() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        nasty_char().prop_filter("one line", |c| !matches!(c, '\n' | '\r' | '"' | '\'')),
        1..60,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>())
    .prop_filter("not blank", |title| !title.trim().is_empty())
}

proptest! {
    #![proptest_config(cases(128))]

    /// Any bytes under any name are a document or a reason, and a document chunks into
    /// passages without blank units.
    #[test]
    fn any_file_is_a_document_or_a_reason(
        text in nasty_text_with(MARKDOWN_PIECES),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        extension in proptest::sample::select(&["md", "markdown", "txt", "csv", "MD", "pdf", ""]),
    ) {
        let source = format!("folder/file.{extension}");
        for content in [text.as_bytes(), &bytes] {
            match parse_document(&source, content) {
                Ok(document) => {
                    let expected = String::from_utf8_lossy(content);
                    prop_assert_eq!(
                        document.content.as_str(),
                        expected.strip_prefix('\u{feff}').unwrap_or(&expected)
                    );
                    for chunk in chunk_document(&document) {
                        prop_assert!(chunk.units.iter().all(|unit| !unit.trim().is_empty()), "{chunk:?}");
                    }
                }
                Err(SkipReason::UnsupportedExtension(_)) => {
                    prop_assert!(!["md", "markdown", "txt", "csv"].contains(&extension.to_lowercase().as_str()));
                }
                Err(_) => {}
            }
        }
    }

    /// A front matter's title is the document's title, whatever the body holds; the front
    /// matter itself is no passage.
    #[test]
    fn the_front_matter_title_names_the_document(title in title(), body in nasty_text_with(MARKDOWN_PIECES)) {
        let content = format!("---\ntitle: {title}\nlang: en\n---\nSome words. {body}");
        let document = parse_document("kb/doc.md", content.as_bytes()).expect("a document");
        prop_assert_eq!(document.title.as_str(), title.trim());
        prop_assert_eq!(document.format, DocumentFormat::Markdown);
        // The passages are the body's alone: the same as the body's without a front matter.
        let mut bare = parse_document("kb/doc.md", format!("Some words. {body}").as_bytes())
            .expect("a document");
        bare.title = document.title.clone();
        prop_assert_eq!(chunk_document(&document), chunk_document(&bare));
    }

    /// A CSV written by a CSV writer, any cell text included, is one passage per row with
    /// a value, each naming every value of its row that is not a code or a dash.
    #[test]
    fn every_csv_row_with_a_value_is_a_passage_of_its_values(
        headers in proptest::collection::vec(nasty_text_with(CSV_PIECES), 1..4),
        rows in proptest::collection::vec(proptest::collection::vec(nasty_text_with(CSV_PIECES), 1..4), 1..5),
    ) {
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
        writer.write_record(&headers).expect("the header is written");
        for row in &rows {
            writer.write_record(row).expect("a row is written");
        }
        let bytes = writer.into_inner().expect("the CSV is written");
        let Ok(document) = parse_document("prices.csv", &bytes) else {
            // A file of blank cells only is empty; anything else a writer wrote is valid.
            prop_assert!(String::from_utf8_lossy(&bytes).trim().is_empty() || rows.iter().flatten().chain(&headers).all(|cell| cell.trim().is_empty()));
            return Ok(());
        };
        let chunks = chunk_document(&document);
        // A row of dashes says nothing ("-" is an empty mark): it is no passage either.
        let with_values: Vec<&Vec<String>> = rows
            .iter()
            .filter(|row| {
                row.iter().any(|cell| {
                    let cell = cell.trim();
                    !cell.is_empty() && !cell.chars().all(|character| "-—–".contains(character))
                })
            })
            .collect();
        prop_assert_eq!(chunks.len(), with_values.len());
        for (chunk, row) in chunks.iter().zip(with_values) {
            // Codes for machines ("PLAN-1") and dashes are left out of the sentence.
            let shown = |cell: &&str| {
                !cell.is_empty()
                    && !cell.chars().all(|character| {
                        character.is_ascii_uppercase()
                            || character.is_ascii_digit()
                            || "-_.—–".contains(character)
                    })
            };
            for cell in row.iter().map(|cell| cell.trim()).filter(shown) {
                prop_assert!(chunk.units[0].contains(cell), "{cell:?} not in {:?}", chunk.units[0]);
            }
        }
    }
}

#[test]
fn a_csv_row_of_blank_cells_is_no_passage() {
    // Found by the property above: `, ` made a passage of one empty unit.
    let document = parse_document("prices.csv", b"plan,price\nPro,10\n, \n,,\n").expect("a CSV");
    let chunks = chunk_document(&document);
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    assert_eq!(chunks[0].units, ["Pro: price 10"]);
}
