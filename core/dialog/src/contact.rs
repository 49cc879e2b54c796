//! Contact details found in free text: phone, e-mail, name and company, however written.

use std::sync::LazyLock;

use closer_model::{Contact, Email, Phone};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// What one message says about how to reach the prospect; `None` where it says nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactUpdate {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub company: Option<String>,
}

impl ContactUpdate {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.phone.is_none()
            && self.email.is_none()
            && self.company.is_none()
    }

    /// Writes the values found into `contact`, a later value replacing an earlier one.
    /// Returns whether anything changed.
    pub fn apply_to(&self, contact: &mut Contact) -> bool {
        let before = contact.clone();
        if let Some(name) = &self.name {
            contact.name = Some(name.clone());
        }
        if let Some(phone) = &self.phone {
            contact.phone = Some(phone.clone());
        }
        if let Some(email) = &self.email {
            contact.email = Some(email.clone());
        }
        if let Some(company) = &self.company {
            contact.company = Some(company.clone());
        }
        *contact != before
    }
}

static PHONE_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\+?\d[\d \t\u{a0}\-()]{5,}\d").expect("the phone candidate pattern is valid")
});

static EMAIL_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("the e-mail candidate pattern is valid")
});

/// Labels before a phone or an address: they are neither a name nor a company.
static CONTACT_LABELS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:моб(?:ильный)?|тел(?:ефон)?|номер|почта|e-?mail|mail|phone|tel|mobile|cell|number|whatsapp|telegram|телеграм)\b\.?",
    )
    .expect("the label pattern is valid")
});

/// A capitalised word: a name, a surname or a word of a company's name.
const CAPITALISED_WORD: &str = r"\p{Lu}[\p{L}'’\-]*";

/// Markers before a name. The strong ones ("меня зовут", "my name is", "контактное лицо")
/// are followed by a name whatever the word; introductions ("I'm", "я —") by a name when they
/// open a clause; the rest ("this is", "ask for", "запишите на") only by a known first name,
/// or by two name-like words in a message with a phone or an address.
static NAME_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?P<marker>(?i:\b(?:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|имя|my\s+name\s+is|my\s+name['’]s|name\s+is|name['’]s|i\s+am|i['’]?m|this\s+is|it['’]s|here['’]s|это|я|с\s+вами|на\s+связи|контактное\s+лицо|контакт(?:\s+для\s+связи)?|contact(?:\s+person)?|ask\s+for|speak\s+(?:to|with)|talk\s+to|ring|call(?:\s+me)?|зовите\s+меня|спросит[еь]|попросит[еь]|позовите|запиш(?:ите|и)\s+на|записать\s+на|оформ(?:ите|ляйте)\s+на|на\s+имя)\s*[:\-—–]?\s+))(?P<name>{w}(?:\s+{w}){{0,2}})",
        w = CAPITALISED_WORD
    ))
    .expect("the name marker pattern is valid")
});

/// Markers by which the prospect introduces themselves ("I'm", "я —"): at the start of a
/// clause, the capitalised word after one is their name even when it is no common first name
/// ("I'm Aigerim"), unless it is a common word ("I'm Interested").
static INTRODUCTION_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:i\s+am|i['’]?m|я\s*[:\-—])")
        .expect("the introduction marker pattern is valid")
});

/// Markers after which the words are certainly a name, even a single unknown word.
static STRONG_NAME_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|my\s+name|name\s+is|name['’]s|контактное\s+лицо|contact\s+person)")
        .expect("the strong name marker pattern is valid")
});

/// Markers after a name: «Светлана меня зовут», «меня Алина зовут», "Kate here",
/// "Dale speaking". Only «зовут» makes any word a name; the others need a known first name.
static NAME_BEFORE_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?:(?i:меня)\s+)?(?P<name>{w}(?:\s+{w}){{0,2}})\s*[,—–\-]?\s+(?P<marker>(?i:меня\s+зовут|зовут|это\s+я|here|speaking|на\s+связи))(?:\P{{L}}|$)",
        w = CAPITALISED_WORD
    ))
    .expect("the name-before-marker pattern is valid")
});

/// "Priya from Cedar Lane", «Ольга из «Ромашки»»: a known first name opening a clause, then
/// where the person works.
static NAME_BEFORE_COMPANY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?P<name>{w}(?:\s+{w})?)\s+(?i:from|из|with|at)\s+[«"“„]?\p{{Lu}}"#,
        w = CAPITALISED_WORD
    ))
    .expect("the name-before-company pattern is valid")
});

/// Words a clause may open with before an introduction: "hi im Tomasz", "Ок, я — Айгерим".
static LEADING_GREETING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:\b(?:hi|hey|hello|hiya|yo|so|ok|okay|well|and|also|sure|yes|oh|ah|привет|здравствуйте|добрый\s+день|доброе\s+утро|добрый\s+вечер|good\s+(?:morning|afternoon|evening)|ок|да|и|ну|так|ой|кстати|поправка)\s*[,!.:]?\s*)+$")
        .expect("the leading greeting pattern is valid")
});

/// "компания Лайтлаб", "ООО «Ромашка»", "ИП Смирнов".
static COMPANY_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?:(?i:\b(?:компани[яиюей]|фирм[аыуе]|организаци[яиюей]|company|firm)\s*[:\-—]?\s+)|\b(?P<form>ООО|ОАО|ЗАО|ПАО|АО|ИП|ТОО|НКО|АНО)\s+)(?:[«"“„'](?P<quoted>[^«»"”“„'\n]{{1,60}})[»"”“']|(?P<plain>{w}(?:\s+{w}){{0,2}})(?P<tail>\s+\p{{Ll}}+\s*(?:[,.;!?)]|$))?)"#,
        w = CAPITALISED_WORD
    ))
    .expect("the company marker pattern is valid")
});

/// "Pixelforge LLC", "Brightline Inc.": a name followed by a legal form written after it.
static COMPANY_WITH_TRAILING_FORM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?P<plain>{w}(?:\s+{w}){{0,2}}),?\s+(?:LLC|L\.L\.C\.|Inc|Ltd|Limited|GmbH|Corp|LLP|PLC|Pty|AG)\b\.?",
        w = CAPITALISED_WORD
    ))
    .expect("the trailing legal form pattern is valid")
});

/// Kinds of business, in any case ending: the noun before a business's name.
const BUSINESS_KIND: &str = r"салон\p{L}*|студи\p{L}*|клиник\p{L}*|сет[ьи]|магазин\p{L}*|интернет-магазин\p{L}*|ресторан\p{L}*|кафе|агентств\p{L}*|бюро|фабрик\p{L}*|завод\p{L}*|ателье|школ\p{L}*|аптек\p{L}*|отел[ьяюе]\p{L}*|гостиниц\p{L}*|мастерск\p{L}*|барбершоп\p{L}*|пекарн\p{L}*|кофейн\p{L}*|центр\p{L}*|фирм\p{L}*|бренд\p{L}*|питомник\p{L}*|ферм[аыуе]|компани\p{L}*|организаци\p{L}*|предприяти\p{L}*|типографи\p{L}*|клуб\p{L}*|пиццери\p{L}*|кондитерск\p{L}*|производств\p{L}*|кооператив\p{L}*|издательств\p{L}*|торгов\p{L}*\s+дом\p{L}*|chain|shop|store|salon|studio|clinic|cafe|bakery|restaurant|agency|company|firm|brand|club|gym|kennel|cattery|nursery|boutique";

/// A quoted name after a kind of business or after "мы —" / "я из": «сеть кофеен «Зерно»»,
/// «Питомник мейн-кунов «Северная Звезда»», «мы — «Зерно»». Quotes around a capitalised name
/// in such a place are a business's name whatever else the message says.
static QUOTED_COMPANY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i:\b(?:{kind})|\bмы|\b(?:я|мы)\s+из|\bfrom|\bat|\bwith)(?:\s+\p{{Ll}}[\p{{Ll}}\-]*){{0,3}}\s*[—–\-:,]?\s*[«"“„](?P<quoted>[^«»"“”„\n]{{1,60}})[»"”“]"#,
        kind = BUSINESS_KIND
    ))
    .expect("the quoted company pattern is valid")
});

/// "I'm with Baltic Timber", "I work at Lumen Dental": where the prospect works. "We're
/// with HubSpot" and «работаем в Excel» name a tool they use, so they are left out.
static COMPANY_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i:\b(?:i\s+am|i['’]?m)\s+(?:with|at)|\b(?:i|we)\s+work\s+(?:at|for)|\bi['’]?m\s+working\s+(?:at|for))\s+(?:(?i:the)\s+)?(?P<plain>{w}(?:\s+{w}){{0,2}})",
        w = CAPITALISED_WORD
    ))
    .expect("the company frame pattern is valid")
});

/// "from Acme", "at Acme Inc", "for Millbrook Foods": "from" and "at" are trusted in a
/// message that carries contact details or a name; any of them before words that end like a
/// company ("Foods", "LLC") is trusted always.
static COMPANY_PREPOSITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?P<preposition>(?i:from|at|for|with))\s+(?:(?i:the)\s+)?(?P<plain>{w}(?:\s+{w}){{0,2}}(?:\s+(?:Inc|LLC|Ltd|GmbH|Co)\.?)?)",
        w = CAPITALISED_WORD
    ))
    .expect("the company preposition pattern is valid")
});

/// "салон Мята", "клиника Дента Плюс": a kind of business before its name. Only trusted in a
/// message that carries contact details, where it names the prospect's own business.
static BUSINESS_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"\b(?i:салон\w*|студи[яиюей]|клиник\w*|сеть|сети|магазин\w*|ресторан\w*|кафе|агентств\w*|бюро|фабрик\w*|завод\w*|ателье|школ\w*|аптек\w*|отел\w*|гостиниц\w*|мастерск\w*|барбершоп\w*|пекарн\w*|кофейн\w*|центр\w*|фирм\w*|бренд\w*|питомник\w*|интернет-магазин\w*|магазин\w*|торговый\s+дом)\s+(?P<plain>[«"“„]?{w}(?:\s+{w}){{0,2}}[»"”“]?)"#,
        w = CAPITALISED_WORD
    ))
    .expect("the business noun pattern is valid")
});

/// "a chain of fitness clubs, Pulse Athletic", "a bakery called Sunny Crumbs": an English
/// kind of business, then its name after a comma or "called".
static ENGLISH_BUSINESS_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?:\b(?i:chain|network|group|family)\s+(?i:of)(?:\s+\p{{Ll}}[\p{{Ll}}\-]*){{1,3}}|\b(?i:salon|clinic|store|shop|studio|agency|restaurant|cafe|café|bakery|gym|club|boutique|hotel|pharmacy|brand|business|company|firm|practice|startup|franchise)s?)(?:\s*,\s*|\s+(?i:called|named)\s+)(?P<plain>{w}(?:\s+{w}){{0,2}})",
        w = CAPITALISED_WORD
    ))
    .expect("the English business noun pattern is valid")
});

/// Text that separates the parts of a contact message: "Марина Белова, компания Лайтлаб".
static SEGMENT_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[,;:\n()!?«»|•·]|[.…](?:\s|$)|\s[—–\-]\s|—|–")
        .expect("the separator pattern is valid")
});

/// A line that closes a letter; the lines after it are the signature. What follows the
/// closing on its own line ("Thanks, Amelia") is the signature's first line.
static CLOSING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:с\s+уважением|с\s+наилучшими\s+пожеланиями|всего\s+(?:доброго|хорошего)|заранее\s+спасибо|спасибо|благодарю|best\s+regards|kind\s+regards|warm\s+regards|warmest\s+regards|best\s+wishes|regards|best|thanks|many\s+thanks|thanks\s+again|thank\s+you|cheers|sincerely|yours\s+sincerely|yours\s+truly|yours|--+|—|–)\s*[,.!]*\s*(?P<rest>[^,.!].*)?$")
        .expect("the closing pattern is valid")
});

/// What separates the parts of a signature line: "Office manager, Maison Verte LLC",
/// "AP Manager | Brightwater Inc.", "Head of Operations at Northgate".
static SIGNATURE_PART_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[,;|•·/]|\s[—–\-]\s|\s(?:at|@|в)\s")
        .expect("the signature separator pattern is valid")
});

mod words;

use words::{COMPANY_WORDS, FIRST_NAMES, JOB_TITLE_WORDS, LEGAL_FORMS, NOT_NAMES, SURNAME_ENDINGS};

fn lower(word: &str) -> String {
    word.to_lowercase().replace('ё', "е")
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn is_first_name(word: &str) -> bool {
    FIRST_NAMES.contains(&lower(word).as_str())
}

/// The nominative of an inflected Russian first name: "Ивана" → "Иван", "Ольгу" → "Ольга",
/// "Сергея" → "Сергей", "Павла" → "Павел". `None` for a word that is already nominative or
/// that is no known name in any case.
fn nominative_first_name(word: &str) -> Option<String> {
    const ENDINGS: &[(&str, &[&str])] = &[
        ("ией", &["ия"]),
        ("ию", &["ия"]),
        ("ии", &["ия"]),
        ("ой", &["а"]),
        ("ей", &["я", "ь"]),
        ("ом", &[""]),
        ("ем", &["й", "ь"]),
        ("ю", &["я", "ь", "й"]),
        ("у", &["а", ""]),
        ("ы", &["а"]),
        ("и", &["а", "я", "ь"]),
        ("е", &["а", "я", ""]),
        ("а", &["", "ь"]),
        ("я", &["й", "ь"]),
    ];
    let lowered = lower(word);
    if FIRST_NAMES.contains(&lowered.as_str())
        || !lowered.chars().all(|ch| ('а'..='я').contains(&ch))
    {
        return None;
    }
    for (ending, replacements) in ENDINGS {
        let Some(stem) = lowered.strip_suffix(ending) else {
            continue;
        };
        if stem.chars().count() < 2 {
            continue;
        }
        for replacement in *replacements {
            let candidate = format!("{stem}{replacement}");
            if FIRST_NAMES.contains(&candidate.as_str()) {
                return Some(title(&candidate));
            }
            // A vowel that drops out when the name is inflected: "Павла" → "Павел",
            // "Льва" → "Лев".
            let mut letters: Vec<char> = stem.chars().collect();
            if let Some(last) = letters.pop() {
                let candidate: String =
                    letters.iter().chain(['е', last].iter()).collect::<String>() + replacement;
                if FIRST_NAMES.contains(&candidate.as_str()) {
                    return Some(title(&candidate));
                }
            }
        }
    }
    None
}

fn looks_like_surname(word: &str) -> bool {
    let word = lower(word);
    word.chars().count() >= 4
        && word.chars().all(|ch| ch.is_alphabetic() || ch == '-')
        && SURNAME_ENDINGS
            .iter()
            .any(|ending| word.ends_with(&lower(ending)))
}

fn is_patronymic(word: &str) -> bool {
    let word = lower(word);
    ["вич", "вна", "ична", "ич"]
        .iter()
        .any(|ending| word.ends_with(ending))
        && word.chars().count() >= 6
}

fn bare(word: &str) -> String {
    lower(word)
        .trim_matches(|ch: char| !ch.is_alphanumeric())
        .to_owned()
}

fn is_not_name(word: &str) -> bool {
    NOT_NAMES.contains(&bare(word).as_str())
}

fn is_job_title_word(word: &str) -> bool {
    JOB_TITLE_WORDS.contains(&bare(word).as_str())
}

fn is_legal_form(word: &str) -> bool {
    LEGAL_FORMS.contains(&bare(word).as_str())
}

/// A capitalised word that may be a name nobody listed ("Aigerim", "Daniyar"): letters only,
/// not written in capitals (an abbreviation), not a common word, not a kind of company.
fn looks_like_unlisted_name(word: &str) -> bool {
    let letters = word.chars().filter(|ch| ch.is_alphabetic()).count();
    letters >= 2
        && is_capitalised(word)
        && word
            .chars()
            .all(|ch| ch.is_alphabetic() || matches!(ch, '-' | '\'' | '’'))
        && !word.chars().skip(1).any(char::is_uppercase)
        && !is_not_name(word)
        && !is_company_word(word)
        && !is_job_title_word(word)
}

/// A word that may stand in a name: capitalised letters, not a common word, a kind of
/// company, a job title or a legal form.
fn is_name_word(word: &str) -> bool {
    is_capitalised(word)
        && word.chars().filter(|ch| ch.is_alphabetic()).count() >= 2
        && word
            .chars()
            .all(|ch| ch.is_alphabetic() || matches!(ch, '-' | '\'' | '’'))
        && !is_not_name(word)
        && !is_company_word(word)
        && !is_job_title_word(word)
        && !is_legal_form(word)
}

/// A name read at the start of some words.
#[derive(Debug, PartialEq)]
struct NameReading {
    /// The name to keep: as written, or the nominative first name alone when the message
    /// only gives inflected forms ("запишите на Петрова Ивана" → "Иван").
    name: String,
    /// How many of the words the name took.
    words: usize,
    /// Whether a known first name is in it; an unknown word needs a strong marker.
    known: bool,
}

/// Reads a name at the start of `words`: a first name with the surname or patronymic next to
/// it in either order, an inflected first name, or name-like words nobody listed.
fn read_name(words: &[&str]) -> Option<NameReading> {
    let name_word = |index: usize| words.get(index).copied().filter(|word| is_name_word(word));
    let first = name_word(0)?;
    let second = name_word(1);
    let third = name_word(2);
    let kept = |taken: &[&str], known: bool| NameReading {
        name: clean(&taken.join(" ")),
        words: taken.len(),
        known,
    };
    // "Emma de Vries": a surname with its particle.
    if let (Some(particle), Some(surname)) = (words.get(1), third) {
        if NAME_PARTICLES.contains(particle)
            && (is_first_name(first) || looks_like_unlisted_name(first))
        {
            return Some(kept(&[first, particle, surname], is_first_name(first)));
        }
    }
    if is_first_name(first) {
        // "Jonas Berg", "Светлана Игоревна", "Светлана Игоревна Котова".
        let mut taken = vec![first];
        if let Some(second) = second {
            taken.push(second);
            if is_patronymic(second) {
                if let Some(third) = third.filter(|word| !is_first_name(word)) {
                    taken.push(third);
                }
            }
        }
        return Some(kept(&taken, true));
    }
    if let Some(nominative) = nominative_first_name(first) {
        let surname = second.is_some_and(|word| !is_first_name(word));
        return Some(NameReading {
            name: nominative,
            words: 1 + usize::from(surname),
            known: true,
        });
    }
    if let Some(second) = second {
        // "Петров Иван", "Петров Иван Сергеевич".
        if is_first_name(second) {
            let mut taken = vec![first, second];
            if let Some(third) = third.filter(|word| is_patronymic(word)) {
                taken.push(third);
            }
            return Some(kept(&taken, true));
        }
        // "Петрова Ивана", "Смирнову Анну": the first name alone, in the nominative.
        if let Some(nominative) = nominative_first_name(second) {
            let patronymic = third.is_some_and(is_patronymic);
            return Some(NameReading {
                name: nominative,
                words: 2 + usize::from(patronymic),
                known: true,
            });
        }
    }
    if looks_like_unlisted_name(first) {
        let mut taken = vec![first];
        if let Some(second) = second.filter(|word| looks_like_unlisted_name(word)) {
            taken.push(second);
        }
        return Some(kept(&taken, false));
    }
    None
}

/// Reads a name that ends the words: «Здравствуйте Светлана» → "Светлана".
fn read_name_at_end(words: &[&str]) -> Option<NameReading> {
    (0..words.len()).find_map(|start| {
        read_name(&words[start..]).filter(|reading| reading.words == words.len() - start)
    })
}

/// Whether `position` of `text` starts a clause: nothing but punctuation before it, or a
/// greeting ("hi im Tomasz").
fn starts_clause(text: &str, position: usize) -> bool {
    let before = text.get(..position).unwrap_or_default();
    let before = LEADING_GREETING
        .find(before)
        .map_or(before, |greeting| &before[..greeting.start()]);
    before.trim_end().chars().last().is_none_or(|ch| {
        matches!(
            ch,
            '.' | ',' | '!' | '?' | ';' | ':' | '\n' | '(' | '—' | '–' | '-'
        )
    })
}

fn is_company_word(word: &str) -> bool {
    COMPANY_WORDS.contains(&bare(word).as_str())
}

fn clean(value: &str) -> String {
    value
        .trim_matches(|ch: char| {
            ch.is_whitespace()
                || matches!(
                    ch,
                    '«' | '»' | '"' | '“' | '”' | '„' | '\'' | '‘' | '’' | '.' | ','
                )
        })
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A company's name as the team wants it: without quotes and legal forms ("ООО «Вектор»" →
/// "Вектор", "Pixelforge LLC" → "Pixelforge"); `None` when nothing of a name is left, or
/// when it is a job title ("Office manager"), a city or a common word.
fn tidy_company(value: &str) -> Option<String> {
    let cleaned = clean(value);
    let mut words: Vec<&str> = cleaned.split_whitespace().collect();
    while words.len() > 1 && words.first().is_some_and(|word| is_legal_form(word)) {
        words.remove(0);
    }
    while words.len() > 1 && words.last().is_some_and(|word| is_legal_form(word)) {
        words.pop();
    }
    let company = clean(&words.join(" "));
    let words: Vec<&str> = company.split_whitespace().collect();
    let first = words.first()?;
    let a_role = words.iter().any(|word| is_job_title_word(word))
        && !words.iter().any(|word| is_company_word(word));
    if !first.chars().next().is_some_and(char::is_alphanumeric)
        || a_role
        || is_not_name(&company)
        || (words.len() == 1 && (is_legal_form(first) || is_not_name(first)))
    {
        return None;
    }
    Some(company)
}

/// A name and a company read from the signature at the end of a message: the lines after a
/// closing ("С уважением,", "Best regards,", "--"), or the last short lines of a message of
/// several lines. The first line that is a name gives the name; the first part of a later
/// line that is neither a job title nor a contact gives the company.
#[derive(Debug, Default, PartialEq)]
struct Signature {
    name: Option<String>,
    company: Option<String>,
}

fn read_signature(blanked: &str) -> Option<Signature> {
    let lines: Vec<&str> = blanked.lines().map(str::trim).collect();
    let has_letters = |line: &&str| line.chars().any(char::is_alphabetic);
    let closing = lines.iter().rposition(|line| CLOSING.is_match(line));
    let (block, after_closing): (Vec<&str>, bool) = match closing {
        Some(index) => {
            let rest = CLOSING
                .captures(lines[index])
                .and_then(|captures| captures.name("rest"))
                .map(|rest| rest.as_str());
            let block = rest
                .into_iter()
                .chain(lines[index + 1..].iter().copied())
                .filter(has_letters)
                .collect();
            (block, true)
        }
        None => {
            if lines.iter().filter(|line| has_letters(line)).count() < 2 {
                return None;
            }
            let is_short = |line: &&str| {
                line.split_whitespace().count() <= 6
                    && line.chars().count() <= 60
                    && !line.ends_with('?')
            };
            let start = lines
                .iter()
                .rposition(|line| !is_short(line))
                .map_or(0, |index| index + 1);
            (
                lines[start..].iter().copied().filter(has_letters).collect(),
                false,
            )
        }
    };
    let (name_index, name, rest_of_line) = block.iter().enumerate().find_map(|(index, line)| {
        let mut parts = SIGNATURE_PART_SEPARATOR.split(line).map(clean);
        let first = parts.next()?;
        let words: Vec<&str> = first.split_whitespace().collect();
        let reading = read_name(&words).filter(|reading| reading.words == words.len())?;
        let plausible = reading.known || (after_closing && words.len() <= 3);
        plausible.then(|| (index, reading.name, parts.collect::<Vec<_>>()))
    })?;
    let later_parts = block[name_index + 1..]
        .iter()
        .flat_map(|line| SIGNATURE_PART_SEPARATOR.split(line).map(clean));
    let company = rest_of_line
        .into_iter()
        .chain(later_parts)
        .filter(|part| part.split_whitespace().count() <= 5)
        .filter(|part| !CONTACT_LABELS.is_match(part))
        .filter(|part| part.chars().next().is_some_and(char::is_uppercase))
        .find_map(|part| tidy_company(&part));
    Some(Signature {
        name: Some(name),
        company,
    })
}

/// A name found by a marker, with how sure the marker makes it.
struct NameCandidate {
    /// 3: a strong marker; 2: a known first name or an introduction; 1: name-like words
    /// after a weak marker in a message with contact details.
    strength: u8,
    position: usize,
    name: String,
}

/// Names after a marker ("меня зовут Алина", "ask for Dale") and before one ("Светлана меня
/// зовут", "Kate here", "Priya from Cedar Lane").
fn names_by_markers(blanked: &str, carries_contact: bool) -> Vec<NameCandidate> {
    let mut candidates = Vec::new();
    for captures in NAME_MARKER.captures_iter(blanked) {
        let (Some(marker), Some(name)) = (captures.name("marker"), captures.name("name")) else {
            continue;
        };
        let words: Vec<&str> = name.as_str().split_whitespace().collect();
        let Some(reading) = read_name(&words) else {
            continue;
        };
        let strong = STRONG_NAME_MARKER.is_match(marker.as_str());
        // "I'm Aigerim", "ok. This is Kofi, kofi@…": at the start of a clause, an introduction
        // (or any marker, in a message with contact details) names the prospect whatever the
        // name is; elsewhere ("this is Moodle") only a known first name counts.
        let opens_clause = starts_clause(blanked, marker.start());
        let introduces = INTRODUCTION_MARKER.is_match(marker.as_str());
        let strength = if strong {
            3
        } else if reading.known || (opens_clause && (introduces || carries_contact)) {
            2
        } else if reading.words >= 2 && carries_contact {
            1
        } else {
            continue;
        };
        candidates.push(NameCandidate {
            strength,
            position: marker.start(),
            name: reading.name,
        });
    }
    for captures in NAME_BEFORE_MARKER.captures_iter(blanked) {
        let (Some(marker), Some(name)) = (captures.name("marker"), captures.name("name")) else {
            continue;
        };
        let words: Vec<&str> = name.as_str().split_whitespace().collect();
        let Some(reading) = read_name_at_end(&words) else {
            continue;
        };
        let strong = lower(marker.as_str()).contains("зовут");
        let strength = if strong {
            3
        } else if reading.known && starts_clause(blanked, name.start()) {
            2
        } else {
            continue;
        };
        candidates.push(NameCandidate {
            strength,
            position: name.start(),
            name: reading.name,
        });
    }
    for captures in NAME_BEFORE_COMPANY.captures_iter(blanked) {
        let Some(name) = captures.name("name") else {
            continue;
        };
        let words: Vec<&str> = name.as_str().split_whitespace().collect();
        let Some(reading) = read_name(&words).filter(|reading| reading.words == words.len()) else {
            continue;
        };
        if reading.known && starts_clause(blanked, name.start()) {
            candidates.push(NameCandidate {
                strength: 2,
                position: name.start(),
                name: reading.name,
            });
        }
    }
    candidates
}

/// Finds a phone, an e-mail, a name and a company in free text.
///
/// Phones are taken from digit runs that [`Phone::parse`] accepts; names from a signature,
/// from markers before or after them ("меня зовут", "I'm", «… меня зовут») or, in a message
/// carrying a phone or an address, from the capitalised words around it; companies from
/// markers ("компания", "ООО «…»", "from", a quoted name after a kind of business), from a
/// signature or, in such a message, from the capitalised words after the name. Companies are
/// kept without quotes and legal forms.
pub fn extract_contact(text: &str) -> ContactUpdate {
    let mut update = ContactUpdate::default();
    // Work on a bounded prefix: a contact never hides at the end of a 10k-character paste,
    // and the patterns stay fast.
    let text: String = text.chars().take(2000).collect();

    let mut blanked = text.clone();
    for found in EMAIL_CANDIDATE.find_iter(&text) {
        if let Ok(email) = Email::parse(found.as_str()) {
            update.email.get_or_insert(email);
            blanked = blanked.replacen(found.as_str(), " , ", 1);
        }
    }
    let without_emails = blanked.clone();
    for found in PHONE_CANDIDATE.find_iter(&without_emails) {
        if is_labelled_as_not_a_phone(&without_emails, found.start()) {
            continue;
        }
        if let Some(phone) = parse_phone_candidate(found.as_str()) {
            update.phone.get_or_insert(phone);
            blanked = blanked.replacen(found.as_str(), " , ", 1);
        }
    }
    let carries_contact = update.phone.is_some() || update.email.is_some();
    let blanked = CONTACT_LABELS.replace_all(&blanked, " , ").into_owned();

    let signature = read_signature(&blanked).unwrap_or_default();
    update.name = signature.name.clone().or_else(|| {
        names_by_markers(&blanked, carries_contact)
            .into_iter()
            .max_by_key(|candidate| (candidate.strength, std::cmp::Reverse(candidate.position)))
            .map(|candidate| candidate.name)
    });
    if update.name.is_none() {
        update.name = lower_case_name(&blanked, carries_contact);
    }

    let company_span = find_company(&blanked, carries_contact, signature, &mut update);
    if carries_contact {
        fill_from_segments(&blanked, company_span.as_deref(), &mut update);
    }
    update
}

/// Finds the company by its markers, from the surest to the least sure, and returns the text
/// it was read from, so that the name is not looked for in it.
fn find_company(
    blanked: &str,
    carries_contact: bool,
    signature: Signature,
    update: &mut ContactUpdate,
) -> Option<String> {
    let mut company_span = None;
    for captures in COMPANY_MARKER.captures_iter(blanked) {
        let Some(value) = captures.name("quoted").or_else(|| captures.name("plain")) else {
            continue;
        };
        let sole_trader = captures
            .name("form")
            .is_some_and(|form| form.as_str() == "ИП");
        if sole_trader && captures.name("plain").is_some() {
            // "ИП Гарипов Рустам Ильдарович" is a person trading under their own name: the
            // person is the name, and the company is a brand the message gives, if any.
            let words: Vec<&str> = value.as_str().split_whitespace().collect();
            let first_name = words.iter().find_map(|word| {
                if is_first_name(word) {
                    Some((*word).to_owned())
                } else {
                    nominative_first_name(word)
                }
            });
            if let Some(first_name) = first_name.filter(|_| words.len() >= 2) {
                if update.name.is_none() {
                    update.name = Some(first_name);
                }
                company_span.get_or_insert_with(|| value.as_str().to_owned());
                continue;
            }
            // "ИП Смирнов": the business is called by the form and the surname.
            if let Some(company) = tidy_company(value.as_str()) {
                update.company = Some(format!("ИП {company}"));
                return Some(value.as_str().to_owned());
            }
            continue;
        }
        // A lower-case word right before the end of the clause belongs to the name
        // ("компания Сырная лавка,"); one followed by more words is the sentence going on.
        let tail = captures
            .name("tail")
            .map(|tail| tail.as_str())
            .unwrap_or_default();
        if let Some(company) = tidy_company(&format!("{}{}", value.as_str(), tail)) {
            update.company = Some(company);
            return Some(value.as_str().to_owned());
        }
    }
    let quoted = QUOTED_COMPANY.captures_iter(blanked).find_map(|captures| {
        let value = captures.name("quoted")?;
        let starts_with_capital = value
            .as_str()
            .trim_start()
            .chars()
            .next()
            .is_some_and(|ch| ch.is_uppercase() || ch.is_ascii_digit());
        let short = value.as_str().split_whitespace().count() <= 5;
        (starts_with_capital && short)
            .then(|| tidy_company(value.as_str()).map(|company| (company, value.as_str())))
            .flatten()
    });
    if let Some((company, span)) = quoted {
        update.company = Some(company);
        return Some(span.to_owned());
    }
    let trusted_always = [&*COMPANY_WITH_TRAILING_FORM, &*COMPANY_FRAME];
    for pattern in trusted_always {
        let found = pattern.captures_iter(blanked).find_map(|captures| {
            let value = captures.name("plain")?;
            let first = value.as_str().split_whitespace().next().unwrap_or_default();
            if is_first_name(first) && !value.as_str().split_whitespace().any(is_company_word) {
                return None;
            }
            tidy_company(value.as_str()).map(|company| (company, value.as_str()))
        });
        if let Some((company, span)) = found {
            update.company = Some(company);
            return Some(span.to_owned());
        }
    }
    if let Some(company) = signature.company {
        update.company = Some(company);
        return company_span;
    }
    let trusted = carries_contact || update.name.is_some();
    if trusted {
        if let Some(value) = BUSINESS_NOUN
            .captures(blanked)
            .and_then(|captures| captures.name("plain"))
        {
            if let Some(company) = tidy_company(value.as_str()) {
                update.company = Some(company);
                return Some(value.as_str().to_owned());
            }
        }
    }
    if let Some(value) = ENGLISH_BUSINESS_NOUN
        .captures(blanked)
        .and_then(|captures| captures.name("plain"))
    {
        if let Some(company) = tidy_company(value.as_str()) {
            update.company = Some(company);
            return Some(value.as_str().to_owned());
        }
    }
    for captures in COMPANY_PREPOSITION.captures_iter(blanked) {
        let (Some(preposition), Some(value)) =
            (captures.name("preposition"), captures.name("plain"))
        else {
            continue;
        };
        let words: Vec<&str> = value.as_str().split_whitespace().collect();
        let first = words.first().copied().unwrap_or_default();
        let ends_like_a_company = words.len() >= 2
            && words
                .last()
                .is_some_and(|word| is_company_word(word) || is_legal_form(word));
        let from_or_at = matches!(lower(preposition.as_str()).as_str(), "from" | "at");
        if !(ends_like_a_company || (from_or_at && trusted)) {
            continue;
        }
        if is_not_name(first) || is_first_name(first) {
            continue;
        }
        if let Some(company) = tidy_company(value.as_str()) {
            update.company = Some(company);
            return Some(value.as_str().to_owned());
        }
    }
    company_span
}

/// `text` with its e-mail addresses, phone numbers and their labels replaced by commas:
/// what is left is what the prospect said besides how to reach them.
pub fn blank_contact_details(text: &str) -> String {
    let mut blanked = text.to_owned();
    for found in EMAIL_CANDIDATE.find_iter(text) {
        if Email::parse(found.as_str()).is_ok() {
            blanked = blanked.replacen(found.as_str(), " , ", 1);
        }
    }
    let without_emails = blanked.clone();
    for found in PHONE_CANDIDATE.find_iter(&without_emails) {
        if is_labelled_as_not_a_phone(&without_emails, found.start()) {
            continue;
        }
        if parse_phone_candidate(found.as_str()).is_some() {
            blanked = blanked.replacen(found.as_str(), " , ", 1);
        }
    }
    CONTACT_LABELS.replace_all(&blanked, " , ").into_owned()
}

/// A message that is nothing but a name ("Пётр", "Анна Ковалёва"), as typed in reply to
/// "how may I call you?". The words must look like a name: a known first name, or
/// capitalised words that are not common words.
pub fn name_alone(text: &str) -> Option<String> {
    let cleaned = clean(text);
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() || words.len() > 3 {
        return None;
    }
    if !words
        .iter()
        .all(|word| word.chars().all(|ch| ch.is_alphabetic() || ch == '-'))
    {
        return None;
    }
    if words
        .iter()
        .any(|word| is_not_name(word) || is_company_word(word))
    {
        return None;
    }
    let known = is_first_name(words[0]) || words.get(1).is_some_and(|word| is_first_name(word));
    let capitalised = words.iter().all(|word| is_capitalised(word));
    let looks_like_full_name = capitalised && words.len() >= 2;
    if !(known || looks_like_full_name) {
        return None;
    }
    let title = |word: &str| -> String {
        let mut chars = word.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    };
    Some(
        words
            .iter()
            .map(|word| title(word))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A name typed in lower case: after "меня зовут" / "my name is", or a known first name
/// standing alone between commas in a message with a phone or an address ("иван, 8916…").
fn lower_case_name(blanked: &str, carries_contact: bool) -> Option<String> {
    let title = |word: &str| -> String {
        let mut chars = word.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    };
    if let Some(captures) = LOWER_CASE_NAME_MARKER.captures(blanked) {
        let first = captures
            .name("first")
            .map(|word| word.as_str())
            .unwrap_or_default();
        if !first.is_empty() && !is_not_name(first) && !is_company_word(first) {
            let surname = captures
                .name("second")
                .map(|word| word.as_str())
                .filter(|word| looks_like_surname(word) && is_first_name(first));
            return Some(match surname {
                Some(surname) => format!("{} {}", title(first), title(surname)),
                None => title(first),
            });
        }
    }
    if carries_contact {
        return SEGMENT_SEPARATOR
            .split(blanked)
            .map(str::trim)
            .find(|segment| {
                let words: Vec<&str> = segment.split_whitespace().collect();
                words.len() == 1 && is_first_name(words[0])
            })
            .map(title);
    }
    None
}

static LOWER_CASE_NAME_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|my\s+name\s+is)\s*[:\-—]?\s+(?P<first>\p{L}[\p{L}\-]*)(?:\s+(?P<second>\p{L}[\p{L}\-]*))?",
    )
    .expect("the lower-case name marker pattern is valid")
});

/// Whether the digits at `start` are labelled as something else: a tax number, an order,
/// an article ("ИНН 7707083893", "заказ 89161234567").
fn is_labelled_as_not_a_phone(text: &str, start: usize) -> bool {
    let before = text.get(..start).unwrap_or_default();
    let tail: String = before
        .chars()
        .rev()
        .take(24)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    NOT_A_PHONE_LABEL.is_match(&tail)
}

static NOT_A_PHONE_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:инн|огрн|огрнип|кпп|бик|окпо|р/?с|к/?с|сч[её]т\w*|заказ\w*|артикул\w*|арт|накладн\w*|трек\w*|штрих\w*|код\w*|sku|order|invoice|tax|vat|inn|article|tracking|barcode|id)\b\W*(?:№|no\.?|номер|number|#)?\s*$",
    )
    .expect("the not-a-phone label pattern is valid")
});

/// Reads the phone in a digit run; when the run also holds a number before the phone
/// ("2 склада 8 916 …" written without commas), the shorter tails are tried too.
fn parse_phone_candidate(candidate: &str) -> Option<Phone> {
    // "3 000 000 000" is an amount written in thousands, not a phone number.
    let groups: Vec<&str> = candidate.split_whitespace().collect();
    let grouped_in_thousands = groups.len() >= 3
        && !candidate.starts_with('+')
        && groups[1..]
            .iter()
            .all(|group| group.len() == 3 && group.chars().all(|ch| ch.is_ascii_digit()));
    if grouped_in_thousands {
        return None;
    }
    if let Ok(phone) = Phone::parse(candidate) {
        return Some(phone);
    }
    let mut rest = candidate;
    while let Some(position) = rest.find(' ') {
        rest = rest[position..].trim_start();
        let digits = rest.chars().filter(char::is_ascii_digit).count();
        if digits < 7 {
            break;
        }
        if let Ok(phone) = Phone::parse(rest) {
            return Some(phone);
        }
    }
    None
}

/// How a part of a contact message between separators looks.
#[derive(Debug, PartialEq)]
enum Segment {
    /// Every word capitalised: "Марина Белова", "СтройМикс", "Balt Logistics".
    Capitalised(String),
    /// The first word capitalised, the rest not: "Сырная лавка".
    Titled(String),
    /// Lower-case words, then capitalised ones: a role before a name ("главврач Сергей Ким").
    /// Only ever read as a name.
    RoleAndName(String),
    Other,
}

fn classify(segment: &str) -> Segment {
    let words: Vec<&str> = segment.split_whitespace().collect();
    if words.is_empty() || words.len() > 4 {
        return Segment::Other;
    }
    if words
        .iter()
        .any(|word| !word.chars().any(char::is_alphabetic))
    {
        return Segment::Other;
    }
    if is_not_name(words[0]) {
        return Segment::Other;
    }
    // "Office manager", "AP Manager", "Operations": a role is neither a name nor a company.
    let a_role = words.iter().any(|word| is_job_title_word(word))
        && !words.iter().any(|word| is_company_word(word));
    let role_tail = words
        .iter()
        .rposition(|word| !is_capitalised(word) || is_not_name(word) || is_job_title_word(word))
        .map_or(0, |index| index + 1);
    if a_role && role_tail == 0 {
        return Segment::Other;
    }
    // "Emma de Vries", "Ludwig van Beek": a surname particle between capitalised words.
    let particle_at = |index: usize| {
        index > 0 && index + 1 < words.len() && NAME_PARTICLES.contains(&words[index])
    };
    if words.len() <= 3
        && !a_role
        && words
            .iter()
            .enumerate()
            .all(|(index, word)| (is_capitalised(word) && !is_not_name(word)) || particle_at(index))
    {
        return Segment::Capitalised(clean(segment));
    }
    if is_capitalised(words[0]) && words.len() <= 2 && !a_role {
        return Segment::Titled(clean(segment));
    }
    let tail_start = role_tail;
    let tail = &words[tail_start..];
    if tail_start > 0 && (1..=2).contains(&tail.len()) {
        return Segment::RoleAndName(clean(&tail.join(" ")));
    }
    Segment::Other
}

/// The lower-case particles of European surnames: "de Vries", "van Beek", "von Trapp".
const NAME_PARTICLES: &[&str] = &[
    "de", "van", "von", "der", "den", "da", "di", "du", "del", "della", "dos", "das", "le", "la",
    "ten", "ter", "bin", "ibn", "al",
];

/// In a message carrying a phone or an address, the name and the company are usually the
/// capitalised parts around it: "Дмитрий Орлов, СтройМикс", "Светлана, …, АгроТорг".
fn fill_from_segments(blanked: &str, company_span: Option<&str>, update: &mut ContactUpdate) {
    let raw_segments: Vec<&str> = SEGMENT_SEPARATOR
        .split(blanked)
        .map(str::trim)
        .filter(|segment| !segment.is_empty())
        .filter(|segment| company_span.is_none_or(|span| !segment.contains(span.trim())))
        .collect();
    let segments: Vec<Segment> = raw_segments
        .iter()
        .map(|segment| classify(segment))
        .collect();

    let mut name_index = None;
    if update.name.is_none() {
        let score = |segment: &Segment| -> u8 {
            let (Segment::Capitalised(text) | Segment::RoleAndName(text)) = segment else {
                return 0;
            };
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.iter().any(|word| is_company_word(word)) {
                return 0;
            }
            match words.as_slice() {
                [first, second]
                    if is_first_name(first)
                        && (looks_like_surname(second) || is_capitalised(second)) =>
                {
                    4
                }
                [_, second] if looks_like_surname(second) => 3,
                // "Kofi Mensah, Accra Labs, …": two capitalised words that are no company,
                // the first such part of a contact line, are a name nobody listed.
                [first, second]
                    if looks_like_unlisted_name(first) && looks_like_unlisted_name(second) =>
                {
                    1
                }
                [first] if is_first_name(first) => 2,
                [first, particle, _]
                    if NAME_PARTICLES.contains(particle)
                        && (is_first_name(first) || looks_like_unlisted_name(first)) =>
                {
                    4
                }
                [first, second] if is_first_name(second) && looks_like_surname(first) => 3,
                // "Петров Иван Сергеевич", "Иван Сергеевич Петров": with a patronymic.
                [_, second, third] if is_first_name(second) && is_patronymic(third) => 4,
                [first, second, _] if is_first_name(first) && is_patronymic(second) => 4,
                _ => 0,
            }
        };
        let best = segments
            .iter()
            .enumerate()
            .map(|(index, segment)| (score(segment), index))
            .filter(|(score, _)| *score > 0)
            .max_by_key(|(score, index)| (*score, std::cmp::Reverse(*index)));
        if let Some((_, index)) = best {
            if let Segment::Capitalised(text) | Segment::RoleAndName(text) = &segments[index] {
                update.name = Some(text.clone());
                name_index = Some(index);
            }
        }
    } else if let Some(name) = &update.name {
        name_index = raw_segments
            .iter()
            .position(|segment| segment.contains(name.as_str()));
    }

    if update.company.is_none() {
        if let Some(name_index) = name_index {
            let company = segments
                .iter()
                .skip(name_index + 1)
                .find_map(|segment| match segment {
                    Segment::Capitalised(text) | Segment::Titled(text) => tidy_company(text),
                    Segment::RoleAndName(_) | Segment::Other => None,
                });
            update.company = company;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(update: &ContactUpdate) -> String {
        format!(
            "name={} phone={} email={} company={}",
            update.name.as_deref().unwrap_or("-"),
            update.phone.as_ref().map(Phone::as_str).unwrap_or("-"),
            update.email.as_ref().map(Email::as_str).unwrap_or("-"),
            update.company.as_deref().unwrap_or("-"),
        )
    }

    #[test]
    fn finds_contacts_however_written() {
        let table = [
            ("меня зовут Алексей Гришин", "name=Алексей Гришин phone=- email=- company=-"),
            (
                "Марина Белова, компания Лайтлаб, +7 921 555-12-34",
                "name=Марина Белова phone=+79215551234 email=- company=Лайтлаб",
            ),
            (
                "запишите: Сергей, 8 (916) 123-45-67, звонить после обеда",
                "name=Сергей phone=+79161234567 email=- company=-",
            ),
            (
                "I'm John Smith from Acme",
                "name=John Smith phone=- email=- company=Acme",
            ),
            (
                "Great, please send us an offer.\n\nBest regards,\nEmma de Vries\nOperations Manager\nBrasserie Noord\n+31 6 4821 9930",
                "name=Emma de Vries phone=+31648219930 email=- company=Brasserie Noord",
            ),
            (
                "Great, please send a proposal to john.miller@gadgetbox.ru. I'm John Miller from GadgetBox.",
                "name=John Miller phone=- email=john.miller@gadgetbox.ru company=GadgetBox",
            ),
            (
                "Пришлите предложение на почту: d.orlov@stroymix.ru, Дмитрий Орлов, СтройМикс",
                "name=Дмитрий Орлов phone=- email=d.orlov@stroymix.ru company=СтройМикс",
            ),
            (
                "Анна Ковалёва, руководитель склада, ФФ Логистик. почта anna.k@firma.ru",
                "name=Анна Ковалёва phone=- email=anna.k@firma.ru company=ФФ Логистик",
            ),
            (
                "Оформим. Павел Зуев, почта pavel.zuev@zuev-shop.ru",
                "name=Павел Зуев phone=- email=pavel.zuev@zuev-shop.ru company=-",
            ),
            (
                "нет, стоп, почта другая: zakaz@zuev-shop.ru, старую не используйте",
                "name=- phone=- email=zakaz@zuev-shop.ru company=-",
            ),
            (
                "Пришлите расчет на 2 склада, 10 пользователей. Тимур Хасанов, 8 917 400 50 60, Сырная лавка",
                "name=Тимур Хасанов phone=+79174005060 email=- company=Сырная лавка",
            ),
            (
                "ок понял. Если что — Артём, тел. +7 999 000-11-22",
                "name=Артём phone=+79990001122 email=- company=-",
            ),
            (
                "Fine. My email is olga.petrova@kidstoys.ru, Olga Petrova, KidsToys",
                "name=Olga Petrova phone=- email=olga.petrova@kidstoys.ru company=KidsToys",
            ),
            (
                "Sorry, typo, my number is +7 921 300 40 59",
                "name=- phone=+79213004059 email=- company=-",
            ),
            (
                "Hello, this is Priya Nair from NordFulfil, +7 812 555 01 23. We are looking for a WMS.",
                "name=Priya Nair phone=+78125550123 email=- company=NordFulfil",
            ),
            (
                "You can reach me at +7 916 700 88 99, Emma Clarke",
                "name=Emma Clarke phone=+79167008899 email=- company=-",
            ),
            (
                "ООО «Ромашка», Иван, ivan@romashka.ru",
                "name=Иван phone=- email=ivan@romashka.ru company=Ромашка",
            ),
            (
                "Константин Белов, Вектор-Авто, +7(950)6543210, почта k.belov@vektor-auto.ru",
                "name=Константин Белов phone=+79506543210 email=k.belov@vektor-auto.ru company=Вектор-Авто",
            ),
            ("12900 в месяц это дорого", "name=- phone=- email=- company=-"),
            ("оборот 3 000 000 000 в год", "name=- phone=- email=- company=-"),
            ("заказ номер 1234567 от 12.05.2024", "name=- phone=- email=- company=-"),
            (
                "Петров Иван Сергеевич, +79161234567",
                "name=Петров Иван Сергеевич phone=+79161234567 email=- company=-",
            ),
            (
                "главврач Сергей Ким, kim@denta.ru, +7 843 200 11 22, клиника Дента Плюс",
                "name=Сергей Ким phone=+78432001122 email=kim@denta.ru company=Дента Плюс",
            ),
            (
                "ИП Смирнов, Олег, oleg@smirnov.ru",
                "name=Олег phone=- email=oleg@smirnov.ru company=ИП Смирнов",
            ),
            (
                "My name is Sarah Connor, company Skynet, email sarah@skynet.com",
                "name=Sarah Connor phone=- email=sarah@skynet.com company=Skynet",
            ),
            (
                "Reach me on +44 20 7946 0958 - Jane Doe, Doe Logistics Ltd",
                // The company is kept without its legal form, as "ООО «Вектор»" is "Вектор".
                "name=Jane Doe phone=+442079460958 email=- company=Doe Logistics",
            ),
            ("мой телефон 916 123-45-67", "name=- phone=+79161234567 email=- company=-"),
            ("ИНН 7707083893, КПП 770701001", "name=- phone=- email=- company=-"),
            ("номер заказа 89161234567", "name=- phone=- email=- company=-"),
            ("меня зовут иван петров", "name=Иван Петров phone=- email=- company=-"),
            ("иван, 89161234567", "name=Иван phone=+79161234567 email=- company=-"),
            ("у нас 3 склада, 300 заказов в день", "name=- phone=- email=- company=-"),
            // Names nobody listed, after an introduction or in a contact line.
            (
                "ok maybe. I'm Aigerim, call me on +7 701 234 56 78",
                "name=Aigerim phone=+77012345678 email=- company=-",
            ),
            ("Hi, I'm Kofi from Accra Labs", "name=Kofi phone=- email=- company=Accra Labs"),
            ("Я — Айгерим, пишу по поводу тарифов", "name=Айгерим phone=- email=- company=-"),
            (
                "sure: Daniyar Sadykov, Steppe University, daniyar.s@steppe-uni.kz",
                "name=Daniyar Sadykov phone=- email=daniyar.s@steppe-uni.kz company=Steppe University",
            ),
            (
                "Kwame Mensah, Gold Coast Traders, kwame@gct.com",
                "name=Kwame Mensah phone=- email=kwame@gct.com company=Gold Coast Traders",
            ),
            // Not names: a common word after "I'm", a product after "this is".
            ("I'm Interested in the Business plan", "name=- phone=- email=- company=-"),
            ("is this Moodle-compatible?", "name=- phone=- email=- company=-"),
            ("we compared it and this is Canvas all over", "name=- phone=- email=- company=-"),
            ("", "name=- phone=- email=- company=-"),
            ("🙂🙂🙂", "name=- phone=- email=- company=-"),
        ];
        for (text, expected) in table {
            assert_eq!(show(&extract_contact(text)), expected, "{text}");
        }
    }

    /// Names and companies in other word orders and frames, signatures, inflected names,
    /// legal forms and quotes of every kind; and words that are no name or company.
    #[test]
    fn finds_names_and_companies_in_any_frame() {
        let table = [
            // A name before its marker, or inside it.
            ("Светлана меня зовут", "Светлана", "-"),
            ("меня Алина зовут", "Алина", "-"),
            ("Хорошо. Меня зовут Игорь Лаврентьев, телефон +7 903 118 52 60", "Игорь Лаврентьев", "-"),
            ("Гульнара меня зовут, хотим подключить два склада", "Гульнара", "-"),
            ("меня Тимофей зовут, телефон 8 900 123 45 67", "Тимофей", "-"),
            (
                "Добрый день! Елена Сергеевна меня зовут, клиника «Дентал Смайл»",
                "Елена Сергеевна",
                "Дентал Смайл",
            ),
            // Contact persons and people to ask for.
            ("Контактное лицо — Игорь Петров, +7 912 345-67-89", "Игорь Петров", "-"),
            ("Контактное лицо: Маргарита Власова", "Маргарита Власова", "-"),
            ("контакт для связи — Рената, renata@kvadrat.ru", "Рената", "-"),
            ("ой, поправка: контакт — Ксения", "Ксения", "-"),
            ("поправка: контактное лицо — Артём Лебедев", "Артём Лебедев", "-"),
            ("send the quote to ap@harborline.com, ask for Dale", "Dale", "-"),
            ("have someone ring Jonas Berg on +7 912 345 67 80", "Jonas Berg", "-"),
            ("please have someone call Megan Brooks, +7 922 100 20 30", "Megan Brooks", "-"),
            ("спросите Дениса, 8 999 765 43 21", "Денис", "-"),
            // Introductions, lower case and abbreviated.
            ("Sure, it's Kate, kate@brightpaws.com", "Kate", "-"),
            ("Morning! It's Connor here, connor@fieldhouse.co", "Connor", "-"),
            ("hi im Tomasz", "Tomasz", "-"),
            ("hey im Radek, we need a quote", "Radek", "-"),
            ("my name's Jenna btw", "Jenna", "-"),
            ("my name's Dominic, I manage the warehouse", "Dominic", "-"),
            // A name after the phone or the address.
            ("call me at +7 404 555 01 13, Keisha", "Keisha", "-"),
            ("text me on +7 917 700 90 01, Harriet", "Harriet", "-"),
            ("89827730514 это Ольга", "Ольга", "-"),
            ("8 921 444 55 66 это Вероника", "Вероника", "-"),
            ("Номер: +7-919-385-27-64. Павел", "Павел", "-"),
            ("Телефон: 8-922-111-22-33. Роман", "Роман", "-"),
            ("пишите на n.grigoreva@mail.ru, Наталья", "Наталья", "-"),
            ("почта zakupki@lesnoy.ru, Галина Петровна", "Галина Петровна", "-"),
            ("Светлана Игоревна, 8 912 000 11 22", "Светлана Игоревна", "-"),
            // Inflected names: the nominative first name alone.
            ("запишите на Петрова Ивана, 8 903 555-44-33", "Иван", "-"),
            ("запишите на Смирнову Анну, 8 916 222 33 44", "Анна", "-"),
            ("оформите на Павла, +7 903 111 00 99", "Павел", "-"),
            // A name and where they work.
            (
                "Priya from Cedar Lane Distributors, priya@cedarlane.com",
                "Priya",
                "Cedar Lane Distributors",
            ),
            (
                "Noah from Ridgeway Supplies here, noah@ridgeway.co.uk",
                "Noah",
                "Ridgeway Supplies",
            ),
            ("I'm with Baltic Timber", "-", "Baltic Timber"),
            ("I'm with Eastwind Freight, we ship pallets", "-", "Eastwind Freight"),
            ("I work at Lumen Dental, we have 3 chairs", "-", "Lumen Dental"),
            ("we're evaluating tools for Millbrook Foods", "-", "Millbrook Foods"),
            ("we need it for Oakridge Logistics, 4 warehouses", "-", "Oakridge Logistics"),
            (
                "i run finance at a chain of fitness clubs, Pulse Athletic, 9 locations",
                "-",
                "Pulse Athletic",
            ),
            ("we run a bakery called Sunny Crumbs", "-", "Sunny Crumbs"),
            // Quoted names after a kind of business, "мы —" or "я из".
            ("мы — сеть кофеен «Зерно»", "-", "Зерно"),
            ("я из кофейни «Зерно»", "-", "Зерно"),
            ("Питомник мейн-кунов «Северная Звезда», звоните 8 915 000 11 22", "-", "Северная Звезда"),
            ("мы — студия йоги «Лотос»", "-", "Лотос"),
            ("я из пекарни „Хлебный Дом“, 8 917 300 40 50", "-", "Хлебный Дом"),
            ("мы из агентства недвижимости \"Квартал\"", "-", "Квартал"),
            // Legal forms and quotes are not part of the name.
            ("ООО «Вектор», Антон, +7 913 222 33 44", "Антон", "Вектор"),
            ("ЗАО \"Стройресурс\", Виктор, viktor@stroyresurs.ru", "Виктор", "Стройресурс"),
            ("компания „Север“, Олег 8 914 555 66 77", "Олег", "Север"),
            ("Pixelforge LLC, Mark Doyle, mark@pixelforge.io", "Mark Doyle", "Pixelforge"),
            (
                "Brightline Inc., contact Rachel Moore, rachel@brightline.com",
                "Rachel Moore",
                "Brightline",
            ),
            // A sole trader's legal name is a person, not a company.
            ("ИП Гарипов Рустам Ильдарович, 8 917 123 45 67", "Рустам", "-"),
            ("ИП Козлова Мария Андреевна, +7 905 765 43 21", "Мария", "-"),
            (
                "ИП Гарипов Рустам Ильдарович, магазин «Чайный двор», 8 917 123 45 67",
                "Рустам",
                "Чайный двор",
            ),
            // Signatures.
            (
                "Please send the offer.\n\nBest regards,\nSophie Laurent\nOffice manager, Maison Verte LLC\n+7 343 290 11 76",
                "Sophie Laurent",
                "Maison Verte",
            ),
            (
                "Прошу выслать КП на 5 точек.\n\nС уважением,\nМарина Котова\nменеджер по закупкам, ООО «ТехноСнаб»\n+7 495 123 45 67",
                "Марина Котова",
                "ТехноСнаб",
            ),
            (
                "Please send pricing for 12 seats.\n\nDaniel Reyes\nHead of Operations\nNorthgate Logistics\ndaniel@northgate.com",
                "Daniel Reyes",
                "Northgate Logistics",
            ),
            (
                "Can we start next week?\nThanks,\nAmelia\nAP Manager | Brightwater Inc.\n+44 20 7946 0111",
                "Amelia",
                "Brightwater",
            ),
            ("see you then\n--\nOwen Price\nOperations", "Owen Price", "-"),
            ("Thanks,\nTomasz Nowak", "Tomasz Nowak", "-"),
            // Not names, not companies.
            ("Спасибо, 8 916 111 22 33", "-", "-"),
            ("Оформляем. 8 916 111 22 34", "-", "-"),
            ("Казань, 8 916 222 33 44", "-", "-"),
            ("Иван, Казань, 8 916 222 33 45", "Иван", "-"),
            ("Monday works, +7 912 555 01 99", "-", "-"),
            ("call me Friday, +7 912 555 02 99", "-", "-"),
            ("Office manager, +7 912 555 03 99", "-", "-"),
            ("AP Manager, ap@northwind.com", "-", "-"),
            ("берём тариф Бизнес, 8 916 333 44 55", "-", "-"),
            ("I'm looking at the Pro plan", "-", "-"),
            ("this is Notion-level stuff", "-", "-"),
            ("у нас магазин в Москве, продаём посуду", "-", "-"),
        ];
        let mut failures = Vec::new();
        for (text, name, company) in table {
            let update = extract_contact(text);
            let found = (
                update.name.as_deref().unwrap_or("-"),
                update.company.as_deref().unwrap_or("-"),
            );
            if found != (name, company) {
                failures.push(format!(
                    "{text:?}: got {found:?}, want {:?}",
                    (name, company)
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The dialog keeps the later of two values: a corrected name replaces the first one.
    #[test]
    fn a_corrected_name_replaces_the_earlier_one() {
        let mut contact = closer_model::Contact::default();
        extract_contact("Анастасия, 8 912 345 67 89").apply_to(&mut contact);
        assert_eq!(contact.name.as_deref(), Some("Анастасия"));
        assert!(extract_contact("ой, поправка: контакт — Ксения").apply_to(&mut contact));
        assert_eq!(contact.name.as_deref(), Some("Ксения"));
        assert_eq!(
            contact.phone.as_ref().map(Phone::as_str),
            Some("+79123456789")
        );
    }

    /// Inflected first names come back in the nominative; other words do not become names.
    #[test]
    fn reads_the_nominative_of_an_inflected_first_name() {
        let table = [
            ("Ивана", Some("Иван")),
            ("Сергея", Some("Сергей")),
            ("Ольгу", Some("Ольга")),
            ("Марию", Some("Мария")),
            ("Павла", Some("Павел")),
            ("Игорем", Some("Игорь")),
            ("Анной", Some("Анна")),
            ("Иван", None),
            ("Казани", None),
            ("Vera", None),
        ];
        for (word, expected) in table {
            assert_eq!(nominative_first_name(word).as_deref(), expected, "{word}");
        }
    }

    #[test]
    fn survives_odd_input() {
        let long = "Иван ".repeat(3000);
        for text in [
            long.as_str(),
            "+",
            "@",
            "((((",
            "8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8",
            "«»",
            "Я",
        ] {
            let _ = extract_contact(text);
        }
    }

    mod properties {
        use closer_testing::{cases, nasty_char, nasty_text, nasty_text_with};
        use proptest::prelude::*;

        use super::*;

        /// What contact messages are made of: markers, labels, digits, separators, names.
        const CONTACT_PIECES: &[&str] = &[
            "меня зовут ",
            "I'm ",
            "my name is ",
            "компания ",
            "ООО «",
            "»",
            "from ",
            "тел. ",
            "e-mail: ",
            "ИНН ",
            "заказ ",
            "+7",
            "8 (916) ",
            "123-45-67",
            "@",
            ".ru",
            "Анна ",
            "Anna ",
            "Иван Петров",
            ", ",
            "; ",
            " — ",
        ];

        /// Text with no letters or digits of its own, so it cannot join or label a number.
        fn noise() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                nasty_char().prop_filter("no letters or digits", |c| {
                    !c.is_alphanumeric()
                        && !matches!(c, '.' | '-' | '+' | '_' | '%' | '@' | '(' | ')')
                }),
                0..40,
            )
            .prop_map(|chars| chars.into_iter().collect())
        }

        proptest! {
            #![proptest_config(cases(128))]

            /// Any message is read without a panic; what it finds is tidy and valid.
            #[test]
            fn any_message_is_read_without_panicking(text in nasty_text_with(CONTACT_PIECES)) {
                let update = extract_contact(&text);
                for value in [&update.name, &update.company].into_iter().flatten() {
                    prop_assert!(!value.is_empty(), "{update:?}");
                    prop_assert_eq!(value.split_whitespace().collect::<Vec<_>>().join(" "), value.clone());
                }
                if let Some(phone) = &update.phone {
                    prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
                }
                let _ = blank_contact_details(&text);
                let _ = name_alone(&text);
            }

            /// A phone and an address set apart by commas are found in any surroundings, and
            /// blanking removes both.
            #[test]
            fn a_phone_and_an_email_are_found_anywhere(
                before in noise(),
                between in noise(),
                after in noise(),
            ) {
                let text = format!("{before}, +7 916 123-45-67, {between}, anna@example.com, {after}");
                let update = extract_contact(&text);
                prop_assert_eq!(update.phone.as_ref().map(Phone::as_str), Some("+79161234567"));
                prop_assert_eq!(update.email.as_ref().map(Email::as_str), Some("anna@example.com"));
                let blanked = blank_contact_details(&text);
                prop_assert!(!blanked.contains("anna@example.com") && !blanked.contains("123-45-67"), "{blanked:?}");
            }

            /// A name typed alone comes back capitalised, one to three words.
            #[test]
            fn a_name_alone_is_one_to_three_capitalised_words(text in nasty_text()) {
                if let Some(name) = name_alone(&text) {
                    let words: Vec<&str> = name.split_whitespace().collect();
                    prop_assert!((1..=3).contains(&words.len()), "{name:?}");
                    prop_assert!(words.iter().all(|word| !word.chars().next().is_some_and(char::is_lowercase)), "{name:?}");
                }
            }
        }
    }
}
