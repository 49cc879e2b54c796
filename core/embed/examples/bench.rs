//! Measures load time and single-call latencies in this build:
//! `cargo run -p closer-embed --release --example bench -- [model file]`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use closer_embed::Model;

const QUERY: &str =
    "Сколько стоит доставка заказа в Москву и можно ли оплатить картой при получении?";
const QUERY_EN: &str = "How much does delivery to Berlin cost and can I pay by card on arrival?";
const SENTENCE: &str =
    "Доставка по Москве занимает один-два дня и стоит триста рублей, а при заказе \
    от пяти тысяч рублей она бесплатна для всех клиентов магазина. ";
const SENTENCE_EN: &str = "Delivery within the city takes one or two days and costs five euros, \
    while orders above fifty euros ship free of charge to every customer. ";

fn words(sentence: &str, n: usize) -> String {
    sentence
        .split_whitespace()
        .cycle()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The median of `runs` calls after one warm-up call.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CLOSER_EMBED_MODEL").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".models/e5-small-q4.bin"));
    let t = Instant::now();
    let model = match Model::load(&path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1);
        }
    };
    println!("load                       {:>8.1?}", t.elapsed());

    let runs = 21;
    println!(
        "query ru (13 words)        {:>8.1?}",
        median(runs, || drop(model.embed_query(QUERY)))
    );
    println!(
        "query en (14 words)        {:>8.1?}",
        median(runs, || drop(model.embed_query(QUERY_EN)))
    );
    for (lang, sentence) in [("ru", SENTENCE), ("en", SENTENCE_EN)] {
        for n in [60, 200, 400] {
            let text = words(sentence, n);
            println!(
                "passage {lang} {n:>3} words        {:>8.1?}",
                median(runs, || drop(model.embed_passage(&text)))
            );
            // The same text through the query path, which is never cut: the cut's saving.
            println!(
                "  uncut (as a query)       {:>8.1?}",
                median(runs, || drop(model.embed_query(&text)))
            );
        }
    }
    let batch: Vec<String> = (0..32).map(|i| words(SENTENCE, 50 + i * 3)).collect();
    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
    let single = median(5, || refs.iter().for_each(|t| drop(model.embed_passage(t))));
    let batched = median(5, || drop(model.embed_passages(&refs)));
    println!("32 passages one by one     {single:>8.1?}");
    println!("32 passages batched        {batched:>8.1?}");
}
