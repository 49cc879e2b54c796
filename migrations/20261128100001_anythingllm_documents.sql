-- What `closer kb sync` pushed to AnythingLLM workspaces: one row per knowledge-base document
-- and workspace, with the hash of what was pushed and where AnythingLLM stored it. A second sync
-- compares hashes (and checks the location is still embedded) and changes nothing.
CREATE TABLE anythingllm_documents (
    workspace    text        NOT NULL,
    -- The document's file name in Closer's knowledge base (kb_documents.source).
    source       text        NOT NULL,
    -- The SHA-256 of what was pushed: title, source and text.
    content_hash text        NOT NULL,
    -- AnythingLLM's `location` (custom-documents/raw-…json), what update-embeddings takes.
    location     text        NOT NULL,
    pushed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, source)
);
