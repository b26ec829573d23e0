-- The notification outbox: every email of a run is stored here, bytes and
-- envelope, before any is sent, so that sending is idempotent. A message is
-- marked sent as soon as the relay has accepted its DATA (250); a notify that
-- is re-run, or restarted after a crash, sends only what is still pending.
-- outbox_runs records that a run's emails were queued, even when there were
-- none, so that notifying the same run again sends nothing.
CREATE TABLE outbox_runs (
	run_id    INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
	queued_at TEXT    NOT NULL,
	emails    INTEGER NOT NULL,
	digest    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outbox (
	message_id   TEXT    PRIMARY KEY,         -- stable Message-ID, without angle brackets
	run_id       INTEGER NOT NULL REFERENCES outbox_runs (run_id) ON DELETE CASCADE,
	org          TEXT    NOT NULL,
	kind         TEXT    NOT NULL DEFAULT 'change' CHECK (kind IN ('change', 'digest')),
	sender       TEXT    NOT NULL,            -- envelope MAIL FROM
	recipients   TEXT    NOT NULL,            -- JSON array: envelope RCPT TO
	data         BLOB    NOT NULL,            -- the RFC 5322 message as sent
	status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'expired')),
	queued_at    TEXT    NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_attempt TEXT,
	last_error   TEXT    NOT NULL DEFAULT '',
	sent_at      TEXT,
	UNIQUE (run_id, org)
);
CREATE INDEX outbox_pending ON outbox (status, queued_at) WHERE status = 'pending';
