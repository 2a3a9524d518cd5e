package store

import (
	"context"
	"database/sql"
	"errors"
)

// Meta returns the value stored under key, and whether it exists.
func (db *DB) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := db.sql.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

// MetaSetDefault stores value under key unless the key already has one, and returns
// the value in force afterwards. Concurrent callers all get the same value.
func (db *DB) MetaSetDefault(ctx context.Context, key, value string) (string, error) {
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING`, key, value); err != nil {
		return "", err
	}
	v, _, err := db.Meta(ctx, key)
	return v, err
}
