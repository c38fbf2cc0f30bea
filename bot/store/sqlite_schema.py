"""The SQLite schema, as migrations: each entry moves it one version up (PRAGMA user_version)."""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        model TEXT,
        updated_at REAL NOT NULL
    );
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        model TEXT,
        auto_transcribe INTEGER,
        updated_at REAL NOT NULL
    );
    CREATE TABLE updates (
        update_id INTEGER PRIMARY KEY,
        seen_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        chat_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        file_id TEXT NOT NULL,
        file_unique_id TEXT NOT NULL,
        model TEXT NOT NULL,
        duration REAL,
        file_size INTEGER,
        file_name TEXT,
        mime_type TEXT,
        language_code TEXT,
        explicit INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        placeholder_id INTEGER,
        error TEXT,
        audio_seconds REAL,
        created_at REAL NOT NULL,
        finished_at REAL,
        UNIQUE (chat_id, message_id)
    );
    CREATE INDEX jobs_ready ON jobs (status, not_before);
    CREATE INDEX jobs_user ON jobs (user_id, created_at);
    """,
    """
    CREATE TABLE prefs (
        scope TEXT NOT NULL,
        owner_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (scope, owner_id, name)
    );
    INSERT INTO prefs SELECT 'user', user_id, 'model', json_quote(model), updated_at
        FROM users WHERE model IS NOT NULL;
    INSERT INTO prefs SELECT 'chat', chat_id, 'model', json_quote(model), updated_at
        FROM chats WHERE model IS NOT NULL;
    INSERT INTO prefs SELECT 'chat', chat_id, 'auto_transcribe',
        CASE auto_transcribe WHEN 0 THEN 'false' ELSE 'true' END, updated_at
        FROM chats WHERE auto_transcribe IS NOT NULL;
    DROP TABLE users;
    DROP TABLE chats;
    CREATE TABLE claims (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    CREATE TABLE transcripts (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        model TEXT NOT NULL,
        audio_seconds REAL NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        at REAL NOT NULL
    );
    CREATE INDEX usage_user ON usage (user_id, at);
    CREATE INDEX usage_at ON usage (at);
    INSERT INTO usage (user_id, chat_id, model, audio_seconds, at)
        SELECT user_id, chat_id, model, audio_seconds, finished_at FROM jobs
        WHERE status='done' AND audio_seconds IS NOT NULL;
    CREATE TABLE jobs_v2 (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        chat_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        file_id TEXT NOT NULL,
        file_unique_id TEXT NOT NULL,
        model TEXT NOT NULL,
        duration REAL,
        file_size INTEGER,
        file_name TEXT,
        mime_type TEXT,
        language_code TEXT,
        explicit INTEGER NOT NULL DEFAULT 0,
        language TEXT,
        prompt TEXT,
        quiet INTEGER NOT NULL DEFAULT 0,
        sender_name TEXT,
        replaces TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        placeholder_id INTEGER,
        error TEXT,
        reply_ids TEXT NOT NULL DEFAULT '[]',
        audio_seconds REAL,
        created_at REAL NOT NULL,
        finished_at REAL,
        UNIQUE (chat_id, message_id, model)
    );
    INSERT INTO jobs_v2 (id, chat_id, message_id, user_id, chat_type, kind, file_id,
        file_unique_id, model, duration, file_size, file_name, mime_type, language_code,
        explicit, status, attempts, not_before, lease_owner, lease_until, placeholder_id, error,
        audio_seconds, created_at, finished_at)
        SELECT id, chat_id, message_id, user_id, chat_type, kind, file_id,
        file_unique_id, model, duration, file_size, file_name, mime_type, language_code,
        explicit, status, attempts, not_before, lease_owner, lease_until, placeholder_id, error,
        audio_seconds, created_at, finished_at FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v2 RENAME TO jobs;
    CREATE INDEX jobs_ready ON jobs (status, not_before);
    CREATE INDEX jobs_user ON jobs (user_id, created_at);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    """,
    # 3: job ids never reused (AUTOINCREMENT), claims fenced (epoch), delivery progress kept;
    # quota charges apart from jobs (pruning jobs must not reset a quota); status counts kept
    # by triggers (a /metrics scrape reads them, never scans).
    """
    CREATE TABLE jobs_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        chat_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        file_id TEXT NOT NULL,
        file_unique_id TEXT NOT NULL,
        model TEXT NOT NULL,
        duration REAL,
        file_size INTEGER,
        file_name TEXT,
        mime_type TEXT,
        language_code TEXT,
        explicit INTEGER NOT NULL DEFAULT 0,
        language TEXT,
        prompt TEXT,
        quiet INTEGER NOT NULL DEFAULT 0,
        sender_name TEXT,
        replaces TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        placeholder_id INTEGER,
        error TEXT,
        reply_ids TEXT NOT NULL DEFAULT '[]',
        audio_seconds REAL,
        created_at REAL NOT NULL,
        finished_at REAL,
        epoch INTEGER NOT NULL DEFAULT 0,
        sent_ids TEXT NOT NULL DEFAULT '[]',
        sent_digest TEXT,
        file_sent INTEGER NOT NULL DEFAULT 0,
        UNIQUE (chat_id, message_id, model)
    );
    INSERT INTO jobs_v3 (id, chat_id, message_id, user_id, chat_type, kind, file_id,
        file_unique_id, model, duration,
        file_size, file_name, mime_type, language_code, explicit, language, prompt, quiet,
        sender_name, replaces, status, attempts, not_before, lease_owner, lease_until,
        placeholder_id, error, reply_ids, audio_seconds, created_at, finished_at)
        SELECT id, chat_id, message_id, user_id, chat_type, kind, file_id,
        file_unique_id, model, duration,
        file_size, file_name, mime_type, language_code, explicit, language, prompt, quiet,
        sender_name, replaces, status, attempts, not_before, lease_owner, lease_until,
        placeholder_id, error, reply_ids, audio_seconds, created_at, finished_at FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v3 RENAME TO jobs;
    CREATE INDEX jobs_ready ON jobs (status, not_before);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    CREATE TABLE charges (
        job_id INTEGER PRIMARY KEY,
        subject INTEGER NOT NULL,
        at REAL NOT NULL,
        seconds REAL NOT NULL,
        open INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX charges_subject ON charges (subject, at);
    CREATE INDEX charges_at ON charges (at);
    INSERT INTO charges (job_id, subject, at, seconds, open)
        SELECT id, user_id, created_at, coalesce(audio_seconds, duration, 0),
        status IN ('queued', 'running') FROM jobs WHERE status != 'failed';
    CREATE TABLE job_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO job_counts (status, n) SELECT s, (SELECT count(*) FROM jobs WHERE status=s)
        FROM (SELECT 'queued' AS s UNION ALL SELECT 'running' UNION ALL SELECT 'done'
        UNION ALL SELECT 'failed');
    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
        UPDATE job_counts SET n=n+1 WHERE status=NEW.status;
    END;
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET n=n-1 WHERE status=OLD.status;
    END;
    CREATE TRIGGER jobs_count_update AFTER UPDATE OF status ON jobs
        WHEN OLD.status != NEW.status BEGIN
        UPDATE job_counts SET n=n-1 WHERE status=OLD.status;
        UPDATE job_counts SET n=n+1 WHERE status=NEW.status;
    END;
    """,
    # 4: usage records say what they paid for; the earlier summaries and translations, told
    # apart by nothing, are "chat".
    """
    ALTER TABLE usage ADD COLUMN kind TEXT NOT NULL DEFAULT 'transcription';
    UPDATE usage SET kind='chat' WHERE input_tokens>0 OR output_tokens>0;
    """,
)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the database to the newest version, one migration (one transaction) at a time."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
        log.info("database schema migrated to version %d", number)
