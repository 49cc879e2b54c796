//! Hostile text for property tests: what a prospect, a platform or a document may send.
//!
//! Every parser of outside input (platform updates, webhooks, the website chat, the knowledge
//! importer, the AnythingLLM stream, contact extraction) and every renderer that splits text
//! at a platform's limit is property-tested with these strategies, so that none of them
//! panics on text a person can type. The characters are the ones that have broken text code
//! before: letters whose case mapping changes their length (`İ`, `ẞ`, the Kelvin sign, `ﬃ`),
//! combining marks, right-to-left marks and scripts, NUL and other controls, emoji joined with
//! ZWJ (two UTF-16 units each), the code points next to the surrogate range, a byte-order mark,
//! Unicode spaces and line separators, and the ASCII punctuation markup languages use.

use proptest::prelude::*;

/// Characters that have broken text handling somewhere.
pub const NASTY_CHARS: &[char] = &[
    // Case mapping changes the length in bytes or chars.
    'İ',
    'ı',
    'ẞ',
    'ß',
    '\u{212A}',
    '\u{212B}',
    'ﬃ',
    'ŉ',
    'ǅ',
    'Σ',
    'ς',
    'ё',
    'Ё',
    'ΐ',
    // Combining marks, alone or stacked.
    '\u{0301}',
    '\u{0308}',
    '\u{0336}',
    '\u{20DD}',
    '\u{035C}',
    // Right-to-left scripts and direction controls.
    'ש',
    'ا',
    'ل',
    '\u{200E}',
    '\u{200F}',
    '\u{202A}',
    '\u{202E}',
    '\u{2066}',
    '\u{2069}',
    // Controls, NUL, zero-width characters, the byte-order mark.
    '\0',
    '\u{1}',
    '\u{7}',
    '\u{1B}',
    '\u{7F}',
    '\u{85}',
    '\u{200B}',
    '\u{200D}',
    '\u{2060}',
    '\u{FEFF}',
    // Emoji: outside the BMP (two UTF-16 units), with modifiers and variation selectors.
    '😀',
    '👨',
    '👩',
    '👧',
    '🏽',
    '\u{FE0F}',
    '\u{1F1F7}',
    '\u{1F1FA}',
    '🤷',
    '♀',
    // Next to the surrogate range, private use, the last code points.
    '\u{D7FF}',
    '\u{E000}',
    '\u{FFFD}',
    '\u{FFFE}',
    '\u{FFFF}',
    '\u{10000}',
    '\u{10FFFF}',
    // Whitespace of every kind.
    ' ',
    ' ',
    ' ',
    '\n',
    '\n',
    '\r',
    '\t',
    '\u{A0}',
    '\u{2028}',
    '\u{2029}',
    '\u{3000}',
    '\u{0B}',
    '\u{0C}',
    // Markup and syntax: HTML, Markdown, mrkdwn, CSV, JSON, mentions, commands.
    '<',
    '>',
    '&',
    '@',
    '#',
    '*',
    '_',
    '~',
    '`',
    '|',
    '\\',
    '"',
    '\'',
    ':',
    ';',
    ',',
    '.',
    '!',
    '?',
    '-',
    '+',
    '/',
    '[',
    ']',
    '(',
    ')',
    '{',
    '}',
    '=',
    '%',
    '№',
    // Digits, for phone numbers, and letters of the scripts Closer reads.
    '0',
    '1',
    '4',
    '7',
    '8',
    '9',
    'a',
    'Z',
    'я',
    'Ж',
    '中',
    '한',
];

/// One character: any scalar value, one of [`NASTY_CHARS`], or printable ASCII.
pub fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        5 => proptest::sample::select(NASTY_CHARS),
        2 => proptest::char::range(' ', '~'),
    ]
}

/// Text of hostile characters: mostly short, sometimes a few thousand characters long.
pub fn nasty_text() -> BoxedStrategy<String> {
    nasty_text_with(&[])
}

/// Like [`nasty_text`], with whole `fragments` (a mention, a tag, an escape, a separator)
/// mixed in among the characters, so that a parser's own syntax appears where it is least
/// expected: split by a combining mark, doubled, at the very start or the very end.
pub fn nasty_text_with(fragments: &'static [&'static str]) -> BoxedStrategy<String> {
    let piece = if fragments.is_empty() {
        nasty_char().prop_map(String::from).boxed()
    } else {
        prop_oneof![
            4 => nasty_char().prop_map(String::from),
            1 => proptest::sample::select(fragments).prop_map(str::to_owned),
        ]
        .boxed()
    };
    prop_oneof![
        8 => proptest::collection::vec(piece.clone(), 0..48),
        1 => proptest::collection::vec(piece, 0..3000),
    ]
    .prop_map(|pieces| pieces.concat())
    .boxed()
}

/// Property-test settings for a parser: enough cases to find a panic, few enough that the
/// whole workspace's tests stay fast on two cores.
pub fn cases(count: u32) -> ProptestConfig {
    ProptestConfig {
        cases: count,
        // A failing case is shrunk; the regression files are not kept in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
