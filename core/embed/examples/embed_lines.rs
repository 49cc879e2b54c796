//! Embeds each line of stdin as a query and prints its vector as a JSON array: for experiments.
use std::io::BufRead;

fn main() {
    let path =
        std::env::var("CLOSER_EMBED_MODEL").unwrap_or_else(|_| ".models/e5-small-q4.bin".into());
    let model = closer_embed::Model::load(std::path::Path::new(&path)).expect("the model");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("a line");
        let vector = model.embed_query(&line);
        let parts: Vec<String> = vector.iter().map(|value| format!("{value:.5}")).collect();
        println!("[{}]", parts.join(","));
    }
}
