-- Per-run rollups of the scores (reports.RunScores), written when a run completes, so that a
-- trend over a year reads a few rows per run and never the run's findings again. Points are in
-- half points (a warn earns half a check's weight); org '' is the nation, standard '' every check.
CREATE TABLE run_scores (
	run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	standard TEXT    NOT NULL,
	org      TEXT    NOT NULL,
	parent   TEXT    NOT NULL DEFAULT '',
	kind     TEXT    NOT NULL DEFAULT '',
	earned   INTEGER NOT NULL,
	possible INTEGER NOT NULL,
	pass     INTEGER NOT NULL DEFAULT 0,
	warn     INTEGER NOT NULL DEFAULT 0,
	fail     INTEGER NOT NULL DEFAULT 0,
	unknown  INTEGER NOT NULL DEFAULT 0,
	na       INTEGER NOT NULL DEFAULT 0,
	accepted INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, standard, org)
) WITHOUT ROWID;

-- The runs whose rollups are stored, and by which version of the scoring (a run of another
-- version is computed again from its findings).
CREATE TABLE run_scored (
	run_id      INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	computed_at TEXT    NOT NULL
);
