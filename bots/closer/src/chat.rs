//! `closer chat`: a conversation with the assistant in the terminal, over the same engine and
//! store as every channel.

use std::io::{BufRead, Write};

use chrono::Utc;
use closer_engine::Engine;
use closer_model::{Channel, InboundContent, InboundMessage, Reply};
use uuid::Uuid;

/// Talks to the assistant until end of input or `/quit`. Each run is a new conversation.
///
/// # Errors
/// Reading the terminal or writing to it fails, or the store becomes unavailable.
pub async fn run(engine: &Engine) -> anyhow::Result<()> {
    let chat_id = format!("terminal-{}", Uuid::new_v4());
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "Closer chat: type as a prospect would; /quit to leave.\n"
    )?;

    let opening = inbound(&chat_id, InboundContent::Start { campaign: None });
    print_replies(&mut stdout, &engine.handle(&opening).await?.replies)?;
    let mut last_buttons: Vec<String> = Vec::new();
    loop {
        write!(stdout, "you> ")?;
        stdout.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/quit" || text == "/exit" {
            break;
        }
        // "/2" presses the second button of the last reply.
        let content = match text.strip_prefix('/').and_then(|n| n.parse::<usize>().ok()) {
            Some(number) if (1..=last_buttons.len()).contains(&number) => {
                InboundContent::QuickReply {
                    payload: last_buttons[number - 1].clone(),
                }
            }
            _ => InboundContent::Text {
                text: text.to_owned(),
            },
        };
        let handled = engine.handle(&inbound(&chat_id, content)).await?;
        last_buttons = handled
            .replies
            .iter()
            .flat_map(|reply| {
                reply
                    .quick_replies
                    .iter()
                    .map(|button| button.payload.clone())
            })
            .collect();
        print_replies(&mut stdout, &handled.replies)?;
        if let Some(lead_id) = handled.lead_id {
            writeln!(stdout, "  (lead {lead_id} recorded)")?;
        }
    }
    Ok(())
}

fn inbound(chat_id: &str, content: InboundContent) -> InboundMessage {
    InboundMessage {
        channel: Channel::Cli,
        chat_id: chat_id.to_owned(),
        platform_message_id: Uuid::new_v4().to_string(),
        sender_name: None,
        content,
        received_at: Utc::now(),
    }
}

fn print_replies(out: &mut impl Write, replies: &[Reply]) -> std::io::Result<()> {
    let mut button_number = 0;
    for reply in replies {
        for line in reply.text.lines() {
            writeln!(out, "bot> {line}")?;
        }
        if !reply.citations.is_empty() {
            let titles: Vec<&str> = reply
                .citations
                .iter()
                .map(|citation| citation.title.as_str())
                .collect();
            writeln!(out, "     sources: {}", titles.join("; "))?;
        }
        for button in &reply.quick_replies {
            button_number += 1;
            writeln!(out, "     [/{button_number}] {}", button.label)?;
        }
        if reply.request_contact {
            writeln!(out, "     (you can type your phone or e-mail)")?;
        }
    }
    writeln!(out)
}
