//! The embedding model as configured: off, a file, or fetched on first use into the data
//! folder. When it cannot be had, Closer says so once and answers with keyword search alone.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use closer_embed::Model;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::EmbeddingsConfig;

/// The model, loaded once per process (some 150 MB), or `None` when it is off or unavailable.
pub async fn model(config: &EmbeddingsConfig) -> Option<Arc<Model>> {
    static LOADED: tokio::sync::OnceCell<Option<Arc<Model>>> = tokio::sync::OnceCell::const_new();
    LOADED
        .get_or_init(|| async {
            match load(config).await {
                Ok(model) => model,
                Err(reason) => {
                    warn_once(&reason);
                    None
                }
            }
        })
        .await
        .clone()
}

async fn load(config: &EmbeddingsConfig) -> Result<Option<Arc<Model>>, String> {
    let path = match config.model.as_str() {
        "off" => return Ok(None),
        "auto" => fetch(config).await?,
        path => PathBuf::from(path),
    };
    let shown = path.display().to_string();
    let model = tokio::task::spawn_blocking(move || Model::load(&path))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("cannot load {shown}: {error}"))?;
    tracing::info!(
        model = model.id(),
        "retrieval by meaning with the embedding model"
    );
    Ok(Some(Arc::new(model)))
}

async fn fetch(config: &EmbeddingsConfig) -> Result<PathBuf, String> {
    let source = closer_models::Source {
        data_dir: config.data_dir.clone(),
        url: config.url.clone(),
        sha256: closer_embed::SHA256.to_owned(),
    };
    let bar = OnceLock::new();
    let fetched = closer_models::obtain(&source, |done, total| {
        let bar = bar.get_or_init(|| {
            eprintln!(
                "Fetching the embedding model into {} (once).",
                source.data_dir.display()
            );
            let bar = ProgressBar::new(total.unwrap_or(0));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        bar.set_position(done);
    })
    .await;
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    fetched.map_err(|error| error.to_string())
}

fn warn_once(reason: &str) {
    static WARNED: OnceLock<()> = OnceLock::new();
    WARNED.get_or_init(|| {
        tracing::warn!(
            reason,
            "the embedding model is not available: answers come from keyword search alone"
        );
    });
}

/// A progress bar for embedding passages, shown only when there is work and a terminal.
pub fn progress(interactive: bool) -> impl Fn(usize, usize) + Send + Sync + 'static {
    let bar = bar(
        "{spinner} embedding {pos}/{len} passages {wide_bar} {eta}",
        interactive,
    );
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if done >= total {
            bar.finish_and_clear();
        }
    }
}

/// A progress bar with `template`, hidden when not `interactive`.
pub fn bar(template: &str, interactive: bool) -> ProgressBar {
    let bar = if interactive {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
