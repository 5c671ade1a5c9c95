-- One row per (user, phrase): the metadata of the current revision of a
-- recording (same schema as sql/sqlite/001_create_recordings.sql). Times are
-- Unix milliseconds. `status` is a VARCHAR, not TEXT, so that it can be
-- indexed without a prefix length. Kept to a single statement so the
-- script can run without multi-statement support.
--
-- `schema_migrations` is created by the store before migrations run:
--   CREATE TABLE IF NOT EXISTS schema_migrations (
--     version    INT          NOT NULL PRIMARY KEY,
--     name       VARCHAR(255) NOT NULL,
--     applied_at BIGINT       NOT NULL
--   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE recordings (
  user_id           BIGINT       NOT NULL,
  phrase_id         BIGINT       NOT NULL,
  revision          BIGINT       NOT NULL,
  status            VARCHAR(16)  NOT NULL,
  original_format   VARCHAR(64)  NOT NULL,
  original_filename TEXT         NOT NULL,
  size_bytes        BIGINT       NOT NULL,
  duration_ms       BIGINT       NOT NULL DEFAULT 0,
  sample_rate       INT          NOT NULL DEFAULT 0,
  channels          INT          NOT NULL DEFAULT 0,
  created_at        BIGINT       NOT NULL,
  updated_at        BIGINT       NOT NULL,
  error             TEXT         NULL,
  serve_original    TINYINT      NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, phrase_id),
  -- Startup recovery looks up every row still `processing`.
  KEY recordings_status_idx (status),
  CONSTRAINT recordings_status_chk
    CHECK (status IN ('processing', 'ready', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
