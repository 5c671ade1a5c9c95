-- One row per (user, phrase): the metadata of the current revision of a
-- recording. Its files live in the blob store under the revision number.
-- `schema_migrations` is created by the store itself before migrations run
-- (it must exist to know which migrations are pending).
-- Times are Unix milliseconds.
CREATE TABLE recordings (
  user_id           INTEGER NOT NULL,
  phrase_id         INTEGER NOT NULL,
  revision          BIGINT  NOT NULL,
  status            TEXT    NOT NULL
                    CHECK (status IN ('processing', 'ready', 'failed')),
  original_format   TEXT    NOT NULL,
  original_filename TEXT    NOT NULL,
  size_bytes        INTEGER NOT NULL,
  duration_ms       INTEGER NOT NULL DEFAULT 0,
  sample_rate       INTEGER NOT NULL DEFAULT 0,
  channels          INTEGER NOT NULL DEFAULT 0,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  error             TEXT    NULL,
  -- 1 when the original bytes are served for their own format (an M4A
  -- upload that is AAC with the moov atom first).
  serve_original    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, phrase_id)
);

-- Startup recovery looks up every row still `processing`.
CREATE INDEX recordings_status_idx ON recordings (status);
