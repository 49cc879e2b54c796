-- Passage embeddings of the in-process model, keyed by the model's id and the hash of the exact
-- text embedded, so a restart, a re-import or a second replica never embeds an unchanged passage
-- again. The vector is little-endian f32, `dim` of them.
CREATE TABLE embeddings (
    model        text NOT NULL,
    content_hash text NOT NULL,
    dim          integer NOT NULL,
    vector       bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, content_hash)
);
