package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// GitHubCacheGet returns the stored response for key (ok false: none).
func (s *Store) GitHubCacheGet(ctx context.Context, key string) (etag string, header http.Header, body []byte, ok bool, err error) {
	var h string
	err = s.r.QueryRowContext(ctx, "SELECT etag, header, body FROM github_cache WHERE key = ?", key).Scan(&etag, &h, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, nil, false, nil
	}
	if err != nil {
		return "", nil, nil, false, fmt.Errorf("store: github cache: %w", err)
	}
	if err := json.Unmarshal([]byte(h), &header); err != nil {
		return "", nil, nil, false, fmt.Errorf("store: github cache header: %w", err)
	}
	return etag, header, body, true, nil
}

// GitHubCachePut stores (or replaces) the response for key.
func (s *Store) GitHubCachePut(ctx context.Context, key, etag string, header http.Header, body []byte) error {
	h, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("store: github cache header: %w", err)
	}
	if body == nil {
		body = []byte{}
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO github_cache (key, etag, header, body, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, header = excluded.header, body = excluded.body,
			updated_at = excluded.updated_at`, key, etag, string(h), body, fmtTime(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: github cache put: %w", err)
	}
	return nil
}
