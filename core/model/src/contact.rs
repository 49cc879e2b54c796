//! Validated contact details: built by a parser at the boundary, trusted inside.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Why a piece of contact data was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a phone number: {0:?}")]
    Phone(String),
    #[error("not an e-mail address: {0:?}")]
    Email(String),
}

/// A phone number in E.164 (`+79215551234`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// A number valid by libphonenumber's numbering-plan metadata, in E.164.
    fn parse_with_metadata(text: &str) -> Result<Phone, ParseError> {
        let trimmed = text.trim();
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) {
            return Err(ParseError::Phone(text.to_owned()));
        }
        // "7 921 ..." without the plus is a Russian number written with its country code.
        let candidate =
            if !trimmed.starts_with('+') && digits.len() == 11 && digits.starts_with('7') {
                format!("+{digits}")
            } else {
                trimmed.to_owned()
            };
        let number = phonenumber::parse(Some(phonenumber::country::Id::RU), &candidate)
            .map_err(|_| ParseError::Phone(text.to_owned()))?;
        if !phonenumber::is_valid(&number) {
            return Err(ParseError::Phone(text.to_owned()));
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        // A number written with its country code is kept as written: the metadata's national
        // prefixes may otherwise eat a digit ("+49 89 …" read as "+49 9 …").
        if trimmed.starts_with('+') && e164.trim_start_matches('+') != digits {
            let code = number.code().value().to_string();
            if digits.starts_with(&code) && (8..=15).contains(&digits.len()) {
                return Ok(Phone(format!("+{digits}")));
            }
            return Err(ParseError::Phone(text.to_owned()));
        }
        Ok(Phone(e164))
    }

    /// Parses a phone number as people write it: `+7 921 555-12-34`, `8 (916) 123-45-67`,
    /// `89161234567`, `+1 (415) 555-0100`, `+44 20 7946 0958`.
    ///
    /// A number without a country code is read as Russian (the `8` trunk prefix included),
    /// the most common case for our prospects. A Russian number that is well formed (ten
    /// national digits starting with 3, 4, 8 or 9) is accepted even outside the ranges the
    /// numbering-plan metadata knows: prospects give new and rare numbers, and the metadata
    /// lags behind. The same parser reads stored numbers back, so whatever it accepted once
    /// it accepts again.
    ///
    /// # Errors
    /// [`ParseError::Phone`] when the text is not a phone number.
    pub fn parse(text: &str) -> Result<Phone, ParseError> {
        if let Ok(phone) = Phone::parse_with_metadata(text) {
            return Ok(phone);
        }
        let trimmed = text.trim();
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let national = match (trimmed.starts_with('+'), digits.len()) {
            (true, 11) if digits.starts_with('7') => &digits[1..],
            (false, 11) if digits.starts_with('7') || digits.starts_with('8') => &digits[1..],
            (false, 10) => digits.as_str(),
            _ => return Err(ParseError::Phone(text.to_owned())),
        };
        if !national.starts_with(['3', '4', '8', '9']) {
            return Err(ParseError::Phone(text.to_owned()));
        }
        Ok(Phone(format!("+7{national}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits alone, without the plus: how the evaluation compares phones.
    pub fn digits(&self) -> String {
        self.0.chars().filter(char::is_ascii_digit).collect()
    }
}

impl TryFrom<String> for Phone {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Phone::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> String {
        value.0
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
        .expect("the e-mail pattern is valid")
});

impl Email {
    /// Parses an address such as `d.orlov@stroymix.ru`.
    ///
    /// # Errors
    /// [`ParseError::Email`] when the text is not an address.
    pub fn parse(text: &str) -> Result<Email, ParseError> {
        let trimmed = text.trim().trim_end_matches(['.', ',', ';', ')']);
        if trimmed.len() > 254 || !EMAIL.is_match(trimmed) {
            return Err(ParseError::Email(text.to_owned()));
        }
        Ok(Email(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a prospect has told us about how to reach them. A later value replaces an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contact {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub company: Option<String>,
}

impl Contact {
    /// Whether the sales team has a way to reach the prospect: a lead needs one.
    pub fn is_reachable(&self) -> bool {
        self.phone.is_some() || self.email.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164() {
        let table = [
            ("+7 921 555-12-34", "+79215551234"),
            ("8 (916) 123-45-67", "+79161234567"),
            ("89161234567", "+79161234567"),
            ("7 912 604 33 21", "+79126043321"),
            ("+7(912)604-33-21", "+79126043321"),
            ("+1 (415) 555-0100", "+14155550100"),
            ("+44 20 7946 0958", "+442079460958"),
            // The digits written after a country code are kept as written.
            ("+49 89 441 2776", "+49894412776"),
            ("+31 6 4821 9930", "+31648219930"),
        ];
        for (text, expected) in table {
            assert_eq!(
                Phone::parse(text).map(|p| p.to_string()),
                Ok(expected.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_phone() {
        for text in ["12345", "2024", "hello", "+7 921", "150"] {
            assert!(Phone::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn well_formed_russian_numbers_the_metadata_lacks_are_accepted() {
        assert!(Phone::parse_with_metadata("+7 812 555 01 23").is_err());
        let table = [
            ("+7 812 555 01 23", Ok("+78125550123")),
            ("8 812 555 01 23", Ok("+78125550123")),
            ("916 123-45-67", Ok("+79161234567")),
            ("+7 123 555 01 23", Err(())),
            ("12345", Err(())),
        ];
        for (text, expected) in table {
            assert_eq!(
                Phone::parse(text).map(|p| p.to_string()).map_err(|_| ()),
                expected.map(str::to_owned),
                "{text}"
            );
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("D.Orlov@StroyMix.ru.").unwrap().as_str(),
            "d.orlov@stroymix.ru"
        );
        assert!(Email::parse("not an email").is_err());
        assert!(Email::parse("a@b").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use closer_testing::{cases, nasty_text_with};

        /// Digits, separators and country codes among hostile characters: text that is
        /// sometimes a phone number.
        const PHONE_PIECES: &[&str] = &[
            "+7",
            "+1",
            "+44",
            "8",
            "9",
            "(916)",
            " ",
            "-",
            "123",
            "4567",
            "89161234567",
            "+7 921 555-12-34",
            "ext. 12",
            "#",
            ";ext=1",
            "\u{a0}",
            "０",
            "٣",
        ];

        proptest! {
            #![proptest_config(cases(256))]

            /// Whatever the parser accepts is E.164, and it accepts its own output again as
            /// the same number: a stored phone always reads back.
            #[test]
            fn a_parsed_phone_is_e164_and_parses_back_to_itself(
                text in nasty_text_with(PHONE_PIECES)
            ) {
                if let Ok(phone) = Phone::parse(&text) {
                    let digits = &phone.as_str()[1..];
                    prop_assert!(phone.as_str().starts_with('+'), "{phone}");
                    prop_assert!(digits.bytes().all(|byte| byte.is_ascii_digit()), "{phone}");
                    prop_assert!((7..=15).contains(&digits.len()), "{phone}");
                    prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
                }
            }

            #[test]
            fn a_parsed_email_is_lower_case_and_parses_back_to_itself(
                text in nasty_text_with(&["a", "b.c", "@", "@x.ru", ".com", "Anna.K+tag@Mail.Example.ORG", "..", "-"])
            ) {
                if let Ok(email) = Email::parse(&text) {
                    prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
                    prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                }
            }
        }
    }
}
