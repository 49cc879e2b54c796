//! `closer kb`: importing a knowledge-base folder into the store and searching it.

use std::path::Path;

use anyhow::Context;
use closer_knowledge::{AudienceFilter, Retriever};
use closer_store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

/// Reads `dir`, and synchronises the store with it: new and changed files are stored,
/// unchanged ones left alone, and documents whose files are gone removed. `interactive` shows
/// a progress bar and lists every changed file; otherwise only the summary and skipped files.
///
/// # Errors
/// The folder cannot be read, or the store fails.
pub async fn import(
    config: &Config,
    store: &Store,
    dir: &Path,
    interactive: bool,
) -> anyhow::Result<()> {
    let bar = crate::embeddings::bar(
        "{spinner} reading {pos}/{len} files {wide_bar}",
        interactive,
    );
    let scanned = closer_knowledge::read_dir(dir, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("while reading the knowledge base in {}", dir.display()))?;
    bar.finish_and_clear();

    // A document whose audience cannot be read is neither left out (its stored version would
    // be removed) nor imported as public: the import stops and names every such file.
    if !scanned.invalid.is_empty() {
        let files: Vec<String> = scanned
            .invalid
            .iter()
            .map(|file| format!("  {}: {}", file.path.display(), file.reason))
            .collect();
        anyhow::bail!(
            "nothing was imported from {}: fix {} first:\n{}",
            dir.display(),
            if files.len() == 1 {
                "this file"
            } else {
                "these files"
            },
            files.join("\n")
        );
    }

    // Building the index before storing proves every document can be indexed.
    Retriever::build(&scanned.documents, &Default::default())
        .with_context(|| format!("while indexing the knowledge base in {}", dir.display()))?;
    let report = store
        .sync_documents(&scanned.documents)
        .await
        .context("while storing the knowledge base")?;
    println!(
        "Imported {} from {}: {} added, {} updated, {} unchanged, {} removed.",
        plural(scanned.documents.len(), "document"),
        dir.display(),
        report.added.len(),
        report.updated.len(),
        report.unchanged.len(),
        report.removed.len(),
    );
    let changes = [
        ("added", &report.added),
        ("updated", &report.updated),
        ("removed", &report.removed),
    ];
    for (label, sources) in changes.into_iter().filter(|_| interactive) {
        for source in sources {
            println!("  {label}: {source}");
        }
    }
    for skipped in &scanned.skipped {
        println!("  skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    // The passages are embedded now, with progress, rather than at the next start.
    if interactive {
        index(config, store, scanned.documents, true).await?;
    }
    Ok(())
}

/// `closer kb import`: [`import`]s `dir`, then, when `[anythingllm]` is configured, syncs the
/// workspace so that it holds the imported public documents and nothing else (a document made
/// internal leaves it now, not at the next `closer kb sync`).
///
/// # Errors
/// As [`import`]; the sync failing (the import is kept, and a running `closer serve` retries
/// the sync at its next check).
pub async fn import_and_sync(config: &Config, store: &Store, dir: &Path) -> anyhow::Result<()> {
    import(config, store, dir, true).await?;
    if config.anythingllm.is_some() {
        sync(config, store).await.context(
            "the knowledge base was imported, but the AnythingLLM workspace was not synced (a running `closer serve` retries at its next check; `closer kb sync` does it now)",
        )?;
    }
    Ok(())
}

/// The retriever over `documents`, with the embedding model when there is one (vectors from
/// the store's cache, the rest embedded with a progress bar when `interactive`).
async fn index(
    config: &Config,
    store: &Store,
    documents: Vec<closer_knowledge::KnowledgeDocument>,
    interactive: bool,
) -> anyhow::Result<Retriever> {
    let model = crate::embeddings::model(&config.knowledge.embeddings).await;
    closer_engine::index::build_retriever(
        store,
        documents,
        &config.knowledge.retriever,
        model,
        crate::embeddings::progress(interactive),
    )
    .await
    .context("while indexing the knowledge base")
}

/// `closer kb sync`: pushes the stored knowledge base to the configured AnythingLLM workspace,
/// with a progress bar, and prints what changed.
///
/// # Errors
/// `[anythingllm]` is not configured; the playbook, the store or AnythingLLM fails.
pub async fn sync(config: &Config, store: &Store) -> anyhow::Result<()> {
    let mut setup = config.anythingllm()?.context(
        "AnythingLLM is not configured: add an [anythingllm] section to the configuration",
    )?;
    setup.settings.request_timeout = setup.sync_timeout;
    let client = closer_knowledge::anythingllm::AnythingLlm::new(&setup.settings)?;
    let dialog = closer_dialog::DialogConfig::from_toml_str(&config.playbook_text()?)
        .context("while reading the playbook")?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} syncing {pos}/{len} documents {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report =
        closer_engine::kb_sync::sync_workspace(store, &client, &dialog, |done, total, source| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(source.to_owned());
        })
        .await
        .with_context(|| {
            format!(
                "while syncing the knowledge base to the AnythingLLM workspace {:?}",
                client.workspace_slug()
            )
        });
    bar.finish_and_clear();
    let report = report?;
    println!(
        "Synced to the AnythingLLM workspace {:?}: {}.",
        client.workspace_slug(),
        report.summary(),
    );
    for (label, sources) in [
        ("added", &report.added),
        ("replaced", &report.replaced),
        ("removed", &report.removed),
        (
            "taken out, not put there by Closer",
            &report.foreign_removed,
        ),
    ] {
        for source in sources {
            println!("  {label}: {source}");
        }
    }
    Ok(())
}

/// Prints the passages retrieval finds for `query`, best first, with their scores.
///
/// # Errors
/// The store fails or the index cannot be built.
pub async fn search(
    config: &Config,
    store: &Store,
    query: &str,
    limit: usize,
    internal: bool,
) -> anyhow::Result<()> {
    let retriever = load(config, store).await?;
    let audience = if internal {
        AudienceFilter::All
    } else {
        AudienceFilter::PublicOnly
    };
    let passages = retriever.search(query, audience, limit);
    if passages.is_empty() {
        println!("Nothing found for {query:?}.");
    }
    for (rank, passage) in passages.iter().enumerate() {
        println!(
            "{}. [{:.2}] {} — {}",
            rank + 1,
            passage.score,
            passage.source,
            passage.title
        );
        for line in passage
            .text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .take(6)
        {
            println!("     {line}");
        }
    }
    Ok(())
}

/// The retriever over the stored knowledge base. When the store holds no documents and the
/// configuration allows it, the configured folder (the demo knowledge base by default) is
/// imported first, and the user is told so.
///
/// # Errors
/// The store fails, the folder cannot be read, or the index cannot be built.
pub async fn load(config: &Config, store: &Store) -> anyhow::Result<Retriever> {
    let mut documents = store
        .documents()
        .await
        .context("while loading the knowledge base")?;
    if documents.is_empty() && config.knowledge.import_when_empty {
        let dir = config.resolve(&config.knowledge.dir);
        if dir.is_dir() {
            eprintln!("The knowledge base is empty: importing {}.", dir.display());
            import(config, store, &dir, false).await?;
            documents = store
                .documents()
                .await
                .context("while loading the knowledge base")?;
        } else {
            eprintln!(
                "The knowledge base is empty and {} does not exist: the assistant will offer a person for every question. Run `closer kb import DIR`.",
                dir.display()
            );
        }
    }
    index(
        config,
        store,
        documents,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )
    .await
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
