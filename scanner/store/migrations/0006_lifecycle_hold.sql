-- A lifecycle that alarms nobody by accident (issue 10).
--
-- A finding is announced new (or regressed) or fixed only once it has held
-- for N consecutive completed runs (the run's hold); unknown or not
-- evaluated neither counts toward a streak nor breaks it. A failure not
-- yet held is 'pending'. The first completed run of a database is a
-- baseline: its failures are open at once, announced as nothing.
--
-- SQLite cannot change a CHECK constraint, so lifecycle and life_events
-- are rebuilt. Streaks of existing rows are taken from their last outcome.

-- The hold a run was completed with (NULL: completed before this
-- migration, when a change was announced at once: 1).
ALTER TABLE runs ADD COLUMN hold INTEGER;

CREATE TABLE lifecycle_v6 (
	finding_id     TEXT PRIMARY KEY,
	check_id       TEXT    NOT NULL,
	rule           TEXT    NOT NULL,
	asset_key      TEXT    NOT NULL,
	asset_kind     TEXT    NOT NULL,
	asset_name     TEXT    NOT NULL,
	asset_org      TEXT    NOT NULL DEFAULT '',
	asset_domain   TEXT    NOT NULL DEFAULT '',
	status         TEXT    NOT NULL CHECK (status IN ('pending', 'open', 'resolved', 'accepted')),
	first_seen_run INTEGER NOT NULL,
	first_seen     TEXT    NOT NULL,
	last_seen_run  INTEGER NOT NULL,         -- last run in which it failed or warned
	last_seen      TEXT    NOT NULL,
	resolved_run   INTEGER,
	resolved_at    TEXT,
	regressions    INTEGER NOT NULL DEFAULT 0,
	last_run       INTEGER NOT NULL,         -- last completed run that evaluated it
	last_outcome   TEXT    NOT NULL,
	last_severity  TEXT    NOT NULL DEFAULT '',
	fail_streak    INTEGER NOT NULL DEFAULT 0, -- consecutive runs failing or warning (unknown skipped)
	pass_streak    INTEGER NOT NULL DEFAULT 0, -- consecutive runs passing or n/a (unknown skipped)
	fail_since     TEXT,                     -- when the current fail streak began
	opened_at      TEXT                      -- when the current open spell began (its first failure)
);
INSERT INTO lifecycle_v6 SELECT finding_id, check_id, rule, asset_key, asset_kind, asset_name, asset_org,
	asset_domain, status, first_seen_run, first_seen, last_seen_run, last_seen, resolved_run, resolved_at,
	regressions, last_run, last_outcome, last_severity,
	last_outcome IN ('fail', 'warn'), last_outcome IN ('pass', 'n/a'),
	CASE WHEN last_outcome IN ('fail', 'warn') THEN last_seen END,
	CASE WHEN status <> 'resolved' THEN first_seen END
	FROM lifecycle;
DROP TABLE lifecycle;
ALTER TABLE lifecycle_v6 RENAME TO lifecycle;
CREATE INDEX lifecycle_org ON lifecycle (asset_org, status);

-- baseline: open in the first run of the database (announced as nothing);
-- reopened: a risk acceptance lapsed (or was revoked) on an open finding.
-- since: for baseline, new and regressed, when the open spell began.
CREATE TABLE life_events_v6 (
	run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	finding_id TEXT    NOT NULL,
	kind       TEXT    NOT NULL CHECK (kind IN ('baseline', 'new', 'regressed', 'resolved', 'reopened')),
	since      TEXT,
	PRIMARY KEY (run_id, finding_id)
) WITHOUT ROWID;
INSERT INTO life_events_v6 (run_id, finding_id, kind, since)
	SELECT e.run_id, e.finding_id, e.kind, CASE WHEN e.kind <> 'resolved' THEN r.finished_at END
	FROM life_events e JOIN runs r ON r.id = e.run_id;
DROP TABLE life_events;
ALTER TABLE life_events_v6 RENAME TO life_events;
CREATE INDEX life_events_finding ON life_events (finding_id);

-- Risk acceptances, kept whole (a new acceptance adds a row; revoking one
-- stamps it), so that rebuilding the lifecycle replays them as they were.
-- One finding (finding_id), or a pattern: a check id or glob (web.hdr.*)
-- and an asset name, *.zone (any name below zone) or * (any asset).
CREATE TABLE risk_acceptances (
	id            INTEGER PRIMARY KEY,
	finding_id    TEXT,
	check_pattern TEXT,
	asset_pattern TEXT,
	reason        TEXT NOT NULL,
	until         TEXT NOT NULL,
	accepted_by   TEXT NOT NULL,
	accepted_at   TEXT NOT NULL,
	revoked_at    TEXT,
	revoked_by    TEXT,
	CHECK ((finding_id IS NOT NULL AND check_pattern IS NULL AND asset_pattern IS NULL)
		OR (finding_id IS NULL AND check_pattern IS NOT NULL AND asset_pattern IS NOT NULL))
);
CREATE INDEX risk_acceptances_finding ON risk_acceptances (finding_id);
INSERT INTO risk_acceptances (finding_id, reason, until, accepted_by, accepted_at)
	SELECT finding_id, reason, until, accepted_by, accepted_at FROM acceptances ORDER BY accepted_at;
DROP TABLE acceptances;

-- What the table of this name held (the latest acceptance of each single
-- finding, its until cut short by a revocation), for readers written
-- before patterns; pattern rows are listed with no finding_id, so they
-- join no finding but count. Matching patterns and history are in
-- risk_acceptances (Store.Acceptances, Store.AcceptanceOf).
CREATE VIEW acceptances AS SELECT finding_id, reason,
	CASE WHEN revoked_at IS NOT NULL AND revoked_at < until THEN revoked_at ELSE until END AS until,
	accepted_by, accepted_at
	FROM risk_acceptances a WHERE finding_id IS NULL
	OR id = (SELECT MAX(id) FROM risk_acceptances b WHERE b.finding_id = a.finding_id);
