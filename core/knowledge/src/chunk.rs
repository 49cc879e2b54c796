//! Splitting documents into passages (a heading section, a table, a CSV row) made of answer units
//! (a sentence, a list item, a table row rendered as "row: column — value").

use std::sync::OnceLock;

use closer_model::{DocumentFormat, KnowledgeDocument};
use regex::Regex;

use crate::import::split_front_matter;

/// A piece of a document that is retrieved as a whole: a Markdown section under its heading path,
/// or one CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The headings above the section, outermost first, without the document title.
    pub headings: Vec<String>,
    /// Sentences, list items and table rows, as plain text ready to be shown.
    pub units: Vec<String>,
    /// For each unit, the block of the section it belongs to (a paragraph, one list, a table
    /// row), numbered from 0: the author wrote a block to be read as a whole.
    pub blocks: Vec<usize>,
}

impl Chunk {
    fn new(headings: Vec<String>) -> Chunk {
        Chunk {
            headings,
            units: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Adds `texts` as one new block.
    fn push_block(&mut self, texts: impl IntoIterator<Item = String>) {
        let block = self.blocks.last().map_or(0, |last| last + 1);
        for text in texts {
            self.units.push(text);
            self.blocks.push(block);
        }
    }

    /// Adds a list item to the list of the last block, or starts a list.
    fn push_list_item(&mut self, text: String, continues_list: bool) {
        match self.blocks.last() {
            Some(last) if continues_list => {
                let block = *last;
                self.units.push(text);
                self.blocks.push(block);
            }
            _ => self.push_block([text]),
        }
    }
}

/// Splits one document into chunks according to its format.
pub fn chunk_document(document: &KnowledgeDocument) -> Vec<Chunk> {
    let chunks = match document.format {
        DocumentFormat::Markdown => {
            let (_, body) = split_front_matter(&document.content);
            chunk_markdown(body, &document.title)
        }
        DocumentFormat::Text => chunk_markdown(&document.content, &document.title),
        DocumentFormat::Csv => chunk_csv(&document.content),
    };
    chunks
        .into_iter()
        .filter(|chunk| !chunk.units.is_empty())
        .collect()
}

fn chunk_csv(content: &str) -> Vec<Chunk> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(content.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(headers) => headers
            .iter()
            .map(|header| header.trim().to_string())
            .collect(),
        Err(_) => return Vec::new(),
    };
    reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|record| {
            let cells: Vec<(&str, &str)> = record
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    let header = headers.get(index).map_or("", String::as_str);
                    (header, value.trim())
                })
                .filter(|(_, value)| !value.is_empty())
                .collect();
            // A row of blank cells (`,,,`) is no passage: an empty unit would be indexed.
            row_sentence(&cells).map(|sentence| Chunk {
                headings: Vec::new(),
                units: vec![sentence],
                blocks: vec![0],
            })
        })
        .collect()
}

/// A CSV row as one sentence a person would write: what the row is about (its first cell with
/// words in it), then the other cells as "column value", without codes meant for machines
/// ("PLAN-START") and empty marks: "Тариф «Старт»: цена (руб.) 4900, период в месяц".
fn row_sentence(cells: &[(&str, &str)]) -> Option<String> {
    let shown: Vec<&(&str, &str)> = cells
        .iter()
        .filter(|(_, value)| !is_code(value) && !is_empty_mark(value))
        .collect();
    let subject = shown
        .iter()
        .position(|(_, value)| value.chars().any(char::is_alphabetic))
        .unwrap_or(0);
    let (_, label) = shown.get(subject)?;
    let rest: Vec<String> = shown
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != subject)
        .map(|(_, (header, value))| {
            if header.is_empty() {
                (*value).to_owned()
            } else {
                format!("{header} {value}")
            }
        })
        .collect();
    Some(if rest.is_empty() {
        (*label).to_owned()
    } else {
        format!("{label}: {}", rest.join(", "))
    })
}

/// An identifier for machines: capitals and digits joined by hyphens, dots or underscores
/// ("PLAN-START", "SK-220BT"), no spaces.
fn is_code(value: &str) -> bool {
    let parts: Vec<&str> = value.split(['-', '_', '.']).collect();
    parts.len() >= 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|character| character.is_ascii_uppercase() || character.is_ascii_digit())
        })
        && value
            .chars()
            .any(|character| character.is_ascii_uppercase())
}

/// A cell that says nothing: a dash.
fn is_empty_mark(value: &str) -> bool {
    value
        .chars()
        .all(|character| matches!(character, '-' | '—' | '–'))
}

/// Markdown (and plain text, which is Markdown without headings) into heading sections.
fn chunk_markdown(body: &str, title: &str) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut heading_stack: Vec<(usize, String)> = Vec::new();
    let mut current = Chunk::new(Vec::new());
    let mut paragraph = String::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut list_item: Option<String> = None;
    // Whether the next list item continues the list of the last block (no blank line, text or
    // heading came between them).
    let mut in_list = false;

    let flush_paragraph = |paragraph: &mut String, chunk: &mut Chunk| {
        if !paragraph.trim().is_empty() {
            chunk.push_block(split_sentences(&clean_inline(paragraph)));
        }
        paragraph.clear();
    };
    let flush_list = |list_item: &mut Option<String>, chunk: &mut Chunk, in_list: &mut bool| {
        if let Some(item) = list_item.take() {
            let item = clean_inline(&item);
            if !item.is_empty() {
                chunk.push_list_item(item, *in_list);
                *in_list = true;
            }
        }
    };
    let flush_table = |table: &mut Vec<Vec<String>>, chunk: &mut Chunk| {
        // Each row answers alone.
        for row in render_table(table) {
            chunk.push_block([row]);
        }
        table.clear();
    };

    for raw_line in body.lines() {
        let line = raw_line.trim();
        let line = line.strip_prefix('>').map_or(line, str::trim);
        if let Some((level, heading)) = parse_heading(line) {
            flush_paragraph(&mut paragraph, &mut current);
            flush_list(&mut list_item, &mut current, &mut in_list);
            flush_table(&mut table, &mut current);
            in_list = false;
            chunks.push(std::mem::replace(&mut current, Chunk::new(Vec::new())));
            heading_stack.retain(|(existing_level, _)| *existing_level < level);
            heading_stack.push((level, clean_inline(&heading)));
            current.headings = heading_stack
                .iter()
                .map(|(_, heading)| heading.clone())
                .filter(|heading| !heading.eq_ignore_ascii_case(title) && heading != title)
                .collect();
            continue;
        }
        if line.starts_with('|') {
            flush_paragraph(&mut paragraph, &mut current);
            flush_list(&mut list_item, &mut current, &mut in_list);
            in_list = false;
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|cell| clean_inline(cell.trim()))
                .collect();
            let is_separator = cells.iter().all(|cell| {
                !cell.is_empty()
                    && cell
                        .chars()
                        .all(|character| matches!(character, '-' | ':' | ' '))
            });
            if !is_separator {
                table.push(cells);
            }
            continue;
        }
        flush_table(&mut table, &mut current);
        if line.is_empty() {
            flush_paragraph(&mut paragraph, &mut current);
            flush_list(&mut list_item, &mut current, &mut in_list);
            in_list = false;
            continue;
        }
        if let Some(item) = list_item_text(line) {
            if !paragraph.trim().is_empty() {
                // A list introduced by its paragraph ("Поддерживаем:") is read with it.
                in_list = paragraph.trim_end().ends_with(':');
            }
            flush_paragraph(&mut paragraph, &mut current);
            flush_list(&mut list_item, &mut current, &mut in_list);
            list_item = Some(item.to_string());
            continue;
        }
        if let Some(item) = list_item.as_mut() {
            // A wrapped list item continues on the next line.
            item.push(' ');
            item.push_str(line);
            continue;
        }
        if !paragraph.is_empty() {
            paragraph.push(' ');
        }
        paragraph.push_str(line);
    }
    flush_paragraph(&mut paragraph, &mut current);
    flush_list(&mut list_item, &mut current, &mut in_list);
    flush_table(&mut table, &mut current);
    chunks.push(current);
    chunks
}

fn parse_heading(line: &str) -> Option<(usize, String)> {
    let level = line
        .chars()
        .take_while(|character| *character == '#')
        .count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    rest.starts_with(' ')
        .then(|| (level, rest.trim().trim_end_matches('#').trim().to_string()))
}

fn list_item_text(line: &str) -> Option<&str> {
    for marker in ["- ", "* ", "+ ", "• "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return Some(rest.trim());
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &line[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(rest.trim());
        }
    }
    None
}

/// A table row as "row label: column — value; column — value", so that each row answers alone.
fn render_table(table: &[Vec<String>]) -> Vec<String> {
    let Some((header, rows)) = table.split_first() else {
        return Vec::new();
    };
    rows.iter()
        .map(|row| {
            let label = row.first().cloned().unwrap_or_default();
            let values: Vec<String> = row
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, value)| !value.is_empty())
                .map(|(index, value)| match header.get(index) {
                    Some(column) if !column.is_empty() => format!("{column} — {value}"),
                    _ => value.clone(),
                })
                .collect();
            let first_column = header.first().filter(|column| !column.is_empty());
            match (label.is_empty(), first_column) {
                (true, _) => values.join("; "),
                // A header over the labels ("Модуль") is noise when the label says it all.
                (false, _) => format!("{label}: {}", values.join("; ")),
            }
        })
        .filter(|unit| !unit.trim().is_empty())
        .collect()
}

/// Removes Markdown inline marks: emphasis, code ticks, images; links keep text and address.
fn clean_inline(text: &str) -> String {
    static LINK: OnceLock<Regex> = OnceLock::new();
    let link = LINK.get_or_init(|| {
        Regex::new(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)").expect("a valid constant regex")
    });
    let text = link.replace_all(text, |captures: &regex::Captures<'_>| {
        let (label, address) = (&captures[1], &captures[2]);
        if address.is_empty() || label.contains(address) || address.starts_with('#') {
            label.to_string()
        } else {
            format!("{label} ({address})")
        }
    });
    let text = text.replace("**", "").replace("__", "").replace('`', "");
    let text = text.replace("<br>", " ").replace("<br/>", " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a paragraph after `.`, `!`, `?` or `…` followed by a capital letter, a digit or a quote.
fn split_sentences(paragraph: &str) -> Vec<String> {
    let characters: Vec<char> = paragraph.chars().collect();
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        if matches!(character, '.' | '!' | '?' | '…')
            && characters.get(index + 1) == Some(&' ')
            && characters.get(index + 2).is_some_and(|next| {
                next.is_uppercase() || next.is_ascii_digit() || matches!(next, '«' | '"')
            })
            && !ends_with_abbreviation(&characters[start..index])
        {
            let sentence: String = characters[start..=index].iter().collect();
            sentences.push(sentence.trim().to_string());
            start = index + 2;
        }
        index += 1;
    }
    let rest: String = characters[start.min(characters.len())..].iter().collect();
    if !rest.trim().is_empty() {
        sentences.push(rest.trim().to_string());
    }
    sentences
}

/// A dot after a short lower-case word ("т. е.", "г.", "e.g.") does not end a sentence.
fn ends_with_abbreviation(before_dot: &[char]) -> bool {
    let word: String = before_dot
        .iter()
        .rev()
        .take_while(|character| character.is_alphabetic())
        .collect();
    let length = word.chars().count();
    length > 0 && length <= 2 && word.chars().all(char::is_lowercase)
}
