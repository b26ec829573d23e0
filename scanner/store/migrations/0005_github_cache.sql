-- The GitHub API's responses, kept between runs so that each request can be
-- conditional (If-None-Match with the stored ETag): GitHub answers 304 for
-- an unchanged resource, which costs no rate limit, and the stored body is
-- used. The key is the method, the URL and a hash of the credentials (what
-- a token may see differs), never the token itself.
CREATE TABLE github_cache (
	key        TEXT PRIMARY KEY,
	etag       TEXT NOT NULL,
	header     TEXT NOT NULL, -- JSON: the response headers kept (Content-Type, Link, Last-Modified)
	body       BLOB NOT NULL,
	updated_at TEXT NOT NULL
) WITHOUT ROWID;
