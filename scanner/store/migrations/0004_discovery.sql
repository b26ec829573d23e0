-- Discovery that a real estate can live with (issue 9).
--
-- ct_cache keeps, per organisational domain, what the last CT search
-- gave: the greatest crt.sh certificate id seen and when the last full
-- search (expired certificates included) ran; ct_cache_names the cleaned
-- names. A run between full searches asks only for current certificates
-- and adds their names (scanner/discover ct.go).
CREATE TABLE ct_cache (
	domain     TEXT    NOT NULL PRIMARY KEY,
	max_id     INTEGER NOT NULL,
	full_at    TEXT,
	fetched_at TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE ct_cache_names (
	domain TEXT NOT NULL REFERENCES ct_cache (domain) ON DELETE CASCADE,
	name   TEXT NOT NULL,
	PRIMARY KEY (domain, name)
) WITHOUT ROWID;

-- Names in scope that no estate domain owns, as a run found them: listed
-- for the board (who owns this?), never scanned.
CREATE TABLE unowned_names (
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	name   TEXT    NOT NULL,
	source TEXT    NOT NULL,
	via    TEXT    NOT NULL,
	PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
