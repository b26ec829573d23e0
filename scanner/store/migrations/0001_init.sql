-- Times are UTC text in one fixed-width format, so they sort as strings.

CREATE TABLE runs (
	id          INTEGER PRIMARY KEY,
	key         TEXT    NOT NULL,            -- hash of estate + options: "the same command"
	options     TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL CHECK (status IN ('running', 'interrupted', 'failed', 'complete')),
	started_at  TEXT    NOT NULL,
	finished_at TEXT,                        -- last time the run stopped; NULL while running
	resumes     INTEGER NOT NULL DEFAULT 0,
	seq         INTEGER UNIQUE               -- completion order; NULL until complete
);
CREATE INDEX runs_key ON runs (key, id);

CREATE TABLE organisations (
	code       TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	parent     TEXT NOT NULL DEFAULT '',
	kind       TEXT NOT NULL DEFAULT '',
	contacts   TEXT NOT NULL DEFAULT '[]',   -- JSON arrays
	domains    TEXT NOT NULL DEFAULT '[]',
	github     TEXT NOT NULL DEFAULT '[]',
	updated_at TEXT NOT NULL
);

CREATE TABLE assets (
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	kind   TEXT    NOT NULL,
	name   TEXT    NOT NULL,
	org    TEXT    NOT NULL DEFAULT '',
	domain TEXT    NOT NULL DEFAULT '',
	source TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, kind, name)
) WITHOUT ROWID;

-- One row per job (collector x asset) per run.
CREATE TABLE evidence (
	id           INTEGER PRIMARY KEY,
	run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	check_id     TEXT    NOT NULL,           -- the collector id
	asset_key    TEXT    NOT NULL,
	asset_kind   TEXT    NOT NULL,
	asset_name   TEXT    NOT NULL,
	asset_org    TEXT    NOT NULL DEFAULT '',
	asset_domain TEXT    NOT NULL DEFAULT '',
	asset_source TEXT    NOT NULL DEFAULT '',
	collected_at TEXT    NOT NULL,
	data         BLOB,                       -- verbatim JSON, or a truncation marker
	data_bytes   INTEGER NOT NULL DEFAULT 0, -- size before any truncation
	truncated    INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT '',
	error_class  TEXT    NOT NULL DEFAULT '',
	UNIQUE (run_id, check_id, asset_key)
);

CREATE TABLE findings (
	id           INTEGER PRIMARY KEY,
	evidence_id  INTEGER NOT NULL REFERENCES evidence (id) ON DELETE CASCADE,
	run_id       INTEGER NOT NULL,
	finding_id   TEXT    NOT NULL,           -- check.Finding.ID(): stable across runs
	check_id     TEXT    NOT NULL,           -- the catalogue id
	rule         TEXT    NOT NULL,
	asset_key    TEXT    NOT NULL,
	asset_kind   TEXT    NOT NULL,
	asset_name   TEXT    NOT NULL,
	asset_org    TEXT    NOT NULL DEFAULT '',
	asset_domain TEXT    NOT NULL DEFAULT '',
	asset_source TEXT    NOT NULL DEFAULT '',
	outcome      TEXT    NOT NULL,
	severity     TEXT    NOT NULL DEFAULT '',
	message      TEXT    NOT NULL DEFAULT '',
	remediation  TEXT    NOT NULL DEFAULT '',
	standards    TEXT,                       -- JSON []check.Ref
	reason       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX findings_run ON findings (run_id, finding_id);
CREATE INDEX findings_evidence ON findings (evidence_id);
CREATE INDEX findings_run_org ON findings (run_id, asset_org);

-- The current state of every finding that has ever failed or warned.
CREATE TABLE lifecycle (
	finding_id     TEXT PRIMARY KEY,
	check_id       TEXT    NOT NULL,
	rule           TEXT    NOT NULL,
	asset_key      TEXT    NOT NULL,
	asset_kind     TEXT    NOT NULL,
	asset_name     TEXT    NOT NULL,
	asset_org      TEXT    NOT NULL DEFAULT '',
	asset_domain   TEXT    NOT NULL DEFAULT '',
	status         TEXT    NOT NULL CHECK (status IN ('open', 'resolved', 'accepted')),
	first_seen_run INTEGER NOT NULL,
	first_seen     TEXT    NOT NULL,
	last_seen_run  INTEGER NOT NULL,         -- last run in which it failed or warned
	last_seen      TEXT    NOT NULL,
	resolved_run   INTEGER,
	resolved_at    TEXT,
	regressions    INTEGER NOT NULL DEFAULT 0,
	last_run       INTEGER NOT NULL,         -- last completed run that evaluated it
	last_outcome   TEXT    NOT NULL,
	last_severity  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX lifecycle_org ON lifecycle (asset_org, status);

-- Transitions made by completing a run: new, regressed, resolved. Still-open
-- is derived (the last transition at or before a run was new or regressed).
CREATE TABLE life_events (
	run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	finding_id TEXT    NOT NULL,
	kind       TEXT    NOT NULL CHECK (kind IN ('new', 'regressed', 'resolved')),
	PRIMARY KEY (run_id, finding_id)
) WITHOUT ROWID;
CREATE INDEX life_events_finding ON life_events (finding_id);

-- The latest risk acceptance of each finding.
CREATE TABLE acceptances (
	finding_id  TEXT PRIMARY KEY,
	reason      TEXT NOT NULL,
	until       TEXT NOT NULL,
	accepted_by TEXT NOT NULL,
	accepted_at TEXT NOT NULL
);
