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

/// "меня зовут Алексей Гришин", "I'm John Miller": a marker that the next words are a name.
static NAME_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i:\b(?:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|имя|my\s+name\s+is|name\s+is|i\s+am|i['’]m|this\s+is|it['’]s|это|я|с\s+вами|на\s+связи)\s*[:\-—]?\s+)(?P<name>{w}(?:\s+{w})?)",
        w = CAPITALISED_WORD
    ))
    .expect("the name marker pattern is valid")
});

/// Markers by which the prospect introduces themselves ("I'm", "я —"): at the start of a
/// clause, the capitalised word after one is their name even when it is no common first name
/// ("I'm Aigerim"), unless it is a common word ("I'm Interested").
static INTRODUCTION_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:i\s+am|i['’]m|я\s*[:\-—])")
        .expect("the introduction marker pattern is valid")
});

/// Markers after which the words are certainly a name, even a single unknown word.
static STRONG_NAME_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|my\s+name\s+is|name\s+is)")
        .expect("the strong name marker pattern is valid")
});

/// "компания Лайтлаб", "ООО «Ромашка»", "from Acme", "at Acme Inc".
static COMPANY_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?:(?i:\b(?:компани[яиюей]|фирм[аыуе]|организаци[яиюей]|company|firm)\s*[:\-—]?\s+)|\b(?:ООО|ОАО|ЗАО|ПАО|АО|ИП|LLC|Ltd)\s+)(?:[«"“„'](?P<quoted>[^»"”“'\n]{{1,60}})[»"”“']|(?P<plain>{w}(?:\s+{w}){{0,2}})(?P<tail>\s+\p{{Ll}}+\s*(?:[,.;!?)]|$))?)"#,
        w = CAPITALISED_WORD
    ))
    .expect("the company marker pattern is valid")
});

/// "from Acme", "at Acme Inc": only trusted in a message that carries contact details.
static COMPANY_PREPOSITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?i:from|at)\s+(?P<plain>{w}(?:\s+{w}){{0,2}}(?:\s+(?:Inc|LLC|Ltd|GmbH|Co)\.?)?)",
        w = CAPITALISED_WORD
    ))
    .expect("the company preposition pattern is valid")
});

/// "салон Мята", "клиника Дента Плюс": a kind of business before its name. Only trusted in a
/// message that carries contact details, where it names the prospect's own business.
static BUSINESS_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"\b(?i:салон\w*|студи[яиюей]|клиник\w*|сеть|сети|магазин\w*|ресторан\w*|кафе|агентств\w*|бюро|фабрик\w*|завод\w*|ателье|школ\w*|аптек\w*|отел\w*|гостиниц\w*|мастерск\w*|барбершоп\w*|пекарн\w*|кофейн\w*|центр\w*|фирм\w*|бренд\w*|интернет-магазин\w*|магазин\w*|торговый\s+дом)\s+(?P<plain>[«"“]?{w}(?:\s+{w}){{0,2}}[»"”]?)"#,
        w = CAPITALISED_WORD
    ))
    .expect("the business noun pattern is valid")
});

/// Text that separates the parts of a contact message: "Марина Белова, компания Лайтлаб".
static SEGMENT_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[,;:\n()!?«»]|[.…](?:\s|$)|\s[—–\-]\s|—|–")
        .expect("the separator pattern is valid")
});

/// Common first names, in lower case, to tell "Сергей" from "Оформим" when a message has a
/// single capitalised word next to a phone. Surnames are recognised by their endings instead.
#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    // Russian, with the usual short forms.
    "александр", "александра", "алексей", "алекс", "алена", "алина", "алиса", "алла", "альберт",
    "анастасия", "анатолий", "андрей", "анна", "антон", "аркадий", "арсений", "артем", "артур",
    "борис", "вадим", "валентин", "валентина", "валерий", "валерия", "варвара", "василий", "вера",
    "вероника", "виктор", "виктория", "виталий", "владимир", "владислав", "влад", "вячеслав",
    "галина", "геннадий", "георгий", "герман", "глеб", "григорий", "даниил", "данил", "дарья",
    "даша", "денис", "диана", "дима", "дмитрий", "евгений", "евгения", "егор", "екатерина",
    "катя", "елена", "лена", "елизавета", "жанна", "захар", "зинаида", "зоя", "иван", "игорь",
    "илья", "инна", "ирина", "ира", "кирилл", "клавдия", "константин", "кристина", "ксения",
    "лариса", "леонид", "лев", "лидия", "любовь", "людмила", "маргарита", "марина", "мария",
    "маша", "марк", "матвей", "максим", "михаил", "миша", "надежда", "наталья", "наталия",
    "наташа", "никита", "николай", "нина", "оксана", "олег", "ольга", "оля", "павел", "паша",
    "петр", "полина", "роман", "рома", "руслан", "светлана", "света", "святослав", "семен",
    "сергей", "серега", "снежана", "софия", "софья", "станислав", "степан", "тамара", "татьяна",
    "таня", "тимофей", "тимур", "ульяна", "федор", "филипп", "эдуард", "элина", "эльвира", "юлия",
    "юля", "юрий", "яна", "ярослав", "ян", "айгуль", "азат", "айдар", "ринат", "рустам", "камила",
    "карина", "милана", "алсу", "гульнара", "динара", "зарина", "ильдар", "марат", "рамиль",
    "фарид", "эмиль", "саша", "женя", "леша", "вова", "коля", "костя", "петя", "толя", "юра",
    "валя", "галя", "нина", "люба", "надя",
    // English and other Latin-script names.
    "aaron", "adam", "alan", "albert", "alex", "alexander", "alexandra", "alice", "alicia",
    "amanda", "amelia", "amy", "andrew", "andy", "angela", "anna", "anne", "anthony", "ben",
    "benjamin", "bob", "brian", "carl", "carlos", "caroline", "charles", "charlie", "chris",
    "christian", "christopher", "claire", "daniel", "dan", "david", "diana", "dmitry", "elena",
    "elizabeth", "ella", "emily", "emma", "eric", "eva", "frank", "george", "grace", "hannah",
    "harry", "helen", "henry", "ian", "igor", "irina", "isabella", "ivan", "jack", "jacob",
    "james", "jane", "jason", "jennifer", "jessica", "jim", "joe", "john", "jonathan", "joseph",
    "julia", "kate", "katherine", "kevin", "laura", "linda", "lisa", "lucy", "maria", "mark",
    "martin", "mary", "matthew", "max", "maxim", "michael", "mike", "natalia", "nick", "nicholas",
    "nina", "oliver", "olga", "paul", "peter", "priya", "rachel", "richard", "robert", "rahul",
    "ryan", "sam", "samuel", "sarah", "sergey", "sofia", "sophia", "steve", "steven", "susan",
    "thomas", "tom", "victor", "victoria", "william", "yuri", "anton", "pavel", "roman", "oleg",
    "ksenia", "tatiana", "svetlana", "marina", "andrey", "alexey", "mikhail", "nikolay",
    "vladimir", "denis", "artem", "kirill", "ekaterina", "anastasia", "wei", "li", "mohammed",
    "ahmed", "ali", "omar", "fatima", "hans", "pierre", "marco", "luca", "giulia", "juan", "jose",
    "ana", "lucas", "noah", "liam", "ethan", "mia", "zoe",
];

/// Russian surname endings: "Гришин", "Белова", "Ковалёва", "Соколов", "Волков".
#[rustfmt::skip]
const SURNAME_ENDINGS: &[&str] = &[
    "ов", "ев", "ёв", "ин", "ын", "ова", "ева", "ёва", "ина", "ына", "ский", "ская", "цкий",
    "цкая", "ой", "ич", "енко", "ко", "ук", "юк", "ян", "дзе", "швили", "ых", "их",
    // The same surnames written in Latin letters: "Sadykov", "Ivanova", "Kowalsky".
    "ov", "ev", "ova", "eva", "in", "ina", "sky", "skiy", "skaya", "enko", "yan", "dze",
    "shvili", "uly", "kyzy",
];

/// Words that start a sentence or label a field: never a name or a company on their own.
#[rustfmt::skip]
const NOT_NAMES: &[&str] = &[
    "да", "нет", "ок", "окей", "ладно", "хорошо", "спасибо", "давайте", "пришлите", "присылайте",
    "запишите", "записывайте", "оформим", "оформляем", "понял", "поняла", "понятно", "если",
    "что", "привет", "здравствуйте", "добрый", "интересно", "отлично", "супер", "ну", "вот",
    "контакт", "контакты", "звоните", "пишите", "перезвоните", "жду", "мой", "моя", "мои", "наш",
    "наша", "компания", "директор", "менеджер", "руководитель", "склад", "спс", "ой", "стоп",
    "правильный", "верный", "убедили", "договорились", "можно", "нужно", "нужен", "нужна",
    "отправьте", "скиньте", "звонить", "после", "сегодня", "завтра", "извините", "hi", "hello",
    "hey", "ok", "okay", "fine", "great", "thanks", "thank", "sorry", "please", "yes", "no",
    "alright", "cool", "sure", "call", "send", "my", "our", "we", "the", "contact", "typo",
    "email", "phone", "tel", "mail", "number", "perfect", "good", "excellent", "deal", "sounds",
    "let", "lets", "let's", "regards", "best", "cheers", "ceo", "cfo", "manager", "director",
    "tomorrow", "today", "also", "and", "but", "or", "i", "i'm", "it", "this",
    // Words that follow "I'm" capitalised without being a name.
    "interested", "looking", "just", "not", "here", "new", "glad", "happy", "from", "in", "at",
    "with", "the", "a", "an", "head", "owner", "founder", "responsible", "calling", "writing",
    "still", "back", "done", "afraid", "wondering", "thinking", "trying", "going", "planning",
    "тут", "здесь", "рад", "рада", "из", "не", "владелец", "владелица", "основатель",
    "основательница", "руководитель", "администратор", "админ",
];

/// Words that mark a company rather than a person: "Balt Logistics", "HomeGoods Market".
#[rustfmt::skip]
const COMPANY_WORDS: &[&str] = &[
    "logistics", "market", "foods", "food", "group", "trade", "trading", "inc", "llc", "ltd",
    "company", "shop", "store", "systems", "solutions", "service", "services", "holding",
    "логистик", "логистика", "групп", "трейд", "маркет", "сервис", "холдинг", "торг", "строй",
    // Kinds of organisation: "Steppe University", "BrightMind Academy", "Школа Рисования".
    "university", "academy", "school", "college", "institute", "studio", "agency", "bank",
    "center", "centre", "clinic", "lab", "labs", "consulting", "partners", "media", "corp",
    "foundation", "университет", "академия", "школа", "институт", "колледж", "фонд", "центр",
    "студия", "клиника", "агентство", "лаборатория", "банк",
];

fn lower(word: &str) -> String {
    word.to_lowercase().replace('ё', "е")
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn is_first_name(word: &str) -> bool {
    FIRST_NAMES.contains(&lower(word).as_str())
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

fn is_not_name(word: &str) -> bool {
    NOT_NAMES.contains(&lower(word).trim_matches(|ch: char| !ch.is_alphanumeric()))
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
}

/// Whether `position` of `text` starts a clause: nothing but punctuation before it.
fn starts_clause(text: &str, position: usize) -> bool {
    text.get(..position)
        .unwrap_or_default()
        .trim_end()
        .chars()
        .last()
        .is_none_or(|ch| {
            matches!(
                ch,
                '.' | ',' | '!' | '?' | ';' | ':' | '\n' | '(' | '—' | '–' | '-'
            )
        })
}

fn is_company_word(word: &str) -> bool {
    let word = lower(word);
    COMPANY_WORDS.iter().any(|company| word == *company)
}

fn clean(value: &str) -> String {
    value
        .trim_matches(|ch: char| {
            ch.is_whitespace() || matches!(ch, '«' | '»' | '"' | '“' | '”' | '„' | '\'' | '.' | ',')
        })
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds a phone, an e-mail, a name and a company in free text.
///
/// Phones are taken from digit runs that [`Phone::parse`] accepts; names from markers
/// ("меня зовут", "I'm") or, in a message carrying a phone or an address, from the
/// capitalised words around it; companies from markers ("компания", "ООО «…»", "from") or,
/// in such a message, from the capitalised words after the name.
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

    // A name after a marker.
    for captures in NAME_MARKER.captures_iter(&blanked) {
        let (Some(whole), Some(name)) = (captures.get(0), captures.name("name")) else {
            continue;
        };
        let words: Vec<&str> = name.as_str().split_whitespace().collect();
        let strong = STRONG_NAME_MARKER.is_match(whole.as_str());
        let Some(first) = words.first() else { continue };
        if is_not_name(first) || is_company_word(first) {
            continue;
        }
        let second_is_surname = words
            .get(1)
            .is_some_and(|word| !is_not_name(word) && !is_company_word(word));
        // "I'm Aigerim", "ok. This is Kofi, kofi@…": at the start of a clause, an introduction
        // (or any marker, in a message with contact details) names the prospect whatever the
        // name is; elsewhere ("this is Moodle") only a known first name counts.
        let marker_text = &whole.as_str()[..name.start() - whole.start()];
        let introduces = INTRODUCTION_MARKER.is_match(marker_text);
        let unlisted_name = looks_like_unlisted_name(first)
            && starts_clause(&blanked, whole.start())
            && (introduces || carries_contact);
        let plausible = strong
            || is_first_name(first)
            || (second_is_surname && carries_contact)
            || unlisted_name;
        if !plausible {
            continue;
        }
        let name = if second_is_surname {
            words.join(" ")
        } else {
            (*first).to_owned()
        };
        update.name = Some(clean(&name));
        break;
    }

    if update.name.is_none() {
        update.name = lower_case_name(&blanked, carries_contact);
    }

    // A company after a marker.
    let mut company_span = None;
    if let Some(captures) = COMPANY_MARKER.captures(&blanked) {
        if let Some(value) = captures.name("quoted").or_else(|| captures.name("plain")) {
            // A lower-case word right before the end of the clause belongs to the name
            // ("компания Сырная лавка,"); one followed by more words is the sentence going on.
            let tail = captures
                .name("tail")
                .map(|tail| tail.as_str())
                .unwrap_or_default();
            let company = clean(&format!("{}{}", value.as_str(), tail));
            // A sole trader's business is called by the form and the surname: "ИП Смирнов".
            let sole_trader = captures
                .get(0)
                .is_some_and(|whole| whole.as_str().trim_start().starts_with("ИП"));
            let company = if sole_trader && captures.name("quoted").is_none() {
                format!("ИП {company}")
            } else {
                company
            };
            if !company.is_empty() && !is_not_name(&company) {
                update.company = Some(company);
                company_span = Some(value.as_str().to_owned());
            }
        }
    }
    if update.company.is_none() && (carries_contact || update.name.is_some()) {
        if let Some(value) = BUSINESS_NOUN
            .captures(&blanked)
            .and_then(|captures| captures.name("plain"))
        {
            let company = clean(value.as_str());
            if !company.is_empty() {
                update.company = Some(company);
                company_span = Some(value.as_str().to_owned());
            }
        }
    }
    if update.company.is_none() && (carries_contact || update.name.is_some()) {
        if let Some(captures) = COMPANY_PREPOSITION.captures(&blanked) {
            if let Some(value) = captures.name("plain") {
                let company = clean(value.as_str());
                let first = company.split_whitespace().next().unwrap_or_default();
                if !company.is_empty() && !is_not_name(first) && !is_first_name(first) {
                    update.company = Some(company);
                    company_span = Some(value.as_str().to_owned());
                }
            }
        }
    }

    if carries_contact {
        fill_from_segments(&blanked, company_span.as_deref(), &mut update);
    }
    update
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
    if words.len() <= 3
        && words
            .iter()
            .all(|word| is_capitalised(word) && !is_not_name(word))
    {
        return Segment::Capitalised(clean(segment));
    }
    if is_capitalised(words[0]) && words.len() <= 2 {
        return Segment::Titled(clean(segment));
    }
    let tail_start = words
        .iter()
        .rposition(|word| !is_capitalised(word) || is_not_name(word))
        .map_or(0, |index| index + 1);
    let tail = &words[tail_start..];
    if tail_start > 0 && (1..=2).contains(&tail.len()) {
        return Segment::RoleAndName(clean(&tail.join(" ")));
    }
    Segment::Other
}

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
                    Segment::Capitalised(text) | Segment::Titled(text) => Some(text.clone()),
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
                "name=Jane Doe phone=+442079460958 email=- company=Doe Logistics Ltd",
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
