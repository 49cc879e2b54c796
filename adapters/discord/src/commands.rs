//! The slash commands Closer registers (`/ask`, `/contact`) and the bodies of its responses
//! to interactions, built with serenity's builders: pure, no I/O.

use serde_json::{json, Value};
use serenity::all::{
    CommandOptionType, CreateActionRow, CreateCommand, CreateCommandOption, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateModal, InputTextStyle,
};

use crate::inbound::{
    Response, ASK_COMMAND, CONTACT_COMMAND, CONTACT_MODAL_ID, EMAIL_FIELD, NAME_FIELD, PHONE_FIELD,
    QUESTION_OPTION,
};

/// The longest question `/ask` takes.
const MAX_QUESTION_CHARS: u16 = 1000;

/// The body of a bulk overwrite of the application's commands.
pub(crate) fn definitions() -> Value {
    let ask = CreateCommand::new(ASK_COMMAND)
        .description("Ask a question about our products, prices and terms")
        .description_localized("ru", "Задать вопрос о продуктах, ценах и условиях")
        .add_option(
            CreateCommandOption::new(CommandOptionType::String, QUESTION_OPTION, "Your question")
                .description_localized("ru", "Ваш вопрос")
                .required(true)
                .max_length(MAX_QUESTION_CHARS),
        );
    let contact = CreateCommand::new(CONTACT_COMMAND)
        .description("Leave your contact details for our sales team")
        .description_localized("ru", "Оставить контакты отделу продаж");
    serde_json::to_value([ask, contact]).unwrap_or_else(|_| json!([]))
}

/// The body of the immediate response to an interaction.
pub(crate) fn response_body(response: &Response) -> Value {
    let response = match response {
        Response::Pong => CreateInteractionResponse::Pong,
        Response::DeferReply => {
            CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new())
        }
        Response::Acknowledge => CreateInteractionResponse::Acknowledge,
        Response::ContactForm { russian } => {
            CreateInteractionResponse::Modal(contact_form(*russian))
        }
        Response::Notice(text) => CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content(*text)
                .ephemeral(true),
        ),
    };
    serde_json::to_value(response).unwrap_or_else(|_| json!({"type": 6}))
}

fn contact_form(russian: bool) -> CreateModal {
    let (title, name, phone, email) = if russian {
        ("Контакты для отдела продаж", "Имя", "Телефон", "E-mail")
    } else {
        (
            "Contact details for our sales team",
            "Name",
            "Phone",
            "E-mail",
        )
    };
    let field = |label: &str, id: &str, max: u16| {
        CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Short, label, id)
                .required(false)
                .max_length(max),
        )
    };
    CreateModal::new(CONTACT_MODAL_ID, title).components(vec![
        field(name, NAME_FIELD, 100),
        field(phone, PHONE_FIELD, 40),
        field(email, EMAIL_FIELD, 254),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn the_commands_are_ask_with_a_question_and_contact() {
        expect![[r#"[{"description":"Ask a question about our products, prices and terms","description_localizations":{"ru":"Задать вопрос о продуктах, ценах и условиях"},"name":"ask","name_localizations":{},"nsfw":false,"options":[{"autocomplete":false,"channel_types":[],"choices":[],"description":"Your question","description_localizations":{"ru":"Ваш вопрос"},"max_length":1000,"max_value":null,"min_length":null,"min_value":null,"name":"question","options":[],"required":true,"type":3}]},{"description":"Leave your contact details for our sales team","description_localizations":{"ru":"Оставить контакты отделу продаж"},"name":"contact","name_localizations":{},"nsfw":false,"options":[]}]"#]]
        .assert_eq(&definitions().to_string());
    }

    #[test]
    fn responses_defer_acknowledge_answer_a_ping_and_open_the_form() {
        expect![[r#"{"data":{"attachments":[]},"type":5}"#]]
            .assert_eq(&response_body(&Response::DeferReply).to_string());
        expect![[r#"{"data":null,"type":6}"#]]
            .assert_eq(&response_body(&Response::Acknowledge).to_string());
        expect![[r#"{"data":null,"type":1}"#]]
            .assert_eq(&response_body(&Response::Pong).to_string());
        expect![[r#"{"data":{"attachments":[],"content":"No.","flags":64},"type":4}"#]]
            .assert_eq(&response_body(&Response::Notice("No.")).to_string());
        expect![[r#"{"data":{"components":[{"components":[{"custom_id":"name","label":"Имя","max_length":100,"required":false,"style":1,"type":4}],"type":1},{"components":[{"custom_id":"phone","label":"Телефон","max_length":40,"required":false,"style":1,"type":4}],"type":1},{"components":[{"custom_id":"email","label":"E-mail","max_length":254,"required":false,"style":1,"type":4}],"type":1}],"custom_id":"closer:contact:form","title":"Контакты для отдела продаж"},"type":9}"#]]
        .assert_eq(&response_body(&Response::ContactForm { russian: true }).to_string());
    }
}
