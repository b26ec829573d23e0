-- The names discovery saw under each estate domain of a run (apex, www, CT
-- names; kept as hosts or not), which the domain's checks read as the hint
-- "names" (dns.dangling-cname follows their aliases). Stored with the run's
-- assets so that a resumed run, which does not discover again, checks the
-- same names.
CREATE TABLE discovered_names (
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	domain TEXT    NOT NULL,
	name   TEXT    NOT NULL,
	PRIMARY KEY (run_id, domain, name)
) WITHOUT ROWID;
