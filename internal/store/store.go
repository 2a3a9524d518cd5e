// Package store is clawbox's persistence: one SQLite file (modernc.org/sqlite, no cgo)
// in WAL mode, with schema migrations applied in order at open. Each domain package
// declares the small interface it needs (sandbox records, audit index, tool manifests)
// and this package implements it, one file per concept.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is an open clawbox store. It is safe for concurrent use.
type DB struct {
	sql  *sql.DB
	path string

	stmtMu sync.Mutex           // guards stmts
	stmts  map[string]*sql.Stmt // prepared once, by their SQL text; closed by Close
}

// Open opens (creating if needed) the store at path, applies pending migrations and
// returns it. The parent directory must exist. The file is created 0600.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, 0)
}

// open is Open applying the migrations up to version upTo only (0: all of them), so
// that tests can make the store an older clawbox left.
func open(ctx context.Context, path string, upTo int) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("store %s: %s is not a directory", path, dir)
		}
	}
	// Create the file with restrictive permissions before SQLite does.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	f.Close()

	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db := &DB{sql: sqldb, path: path}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if err := db.migrate(ctx, upTo); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return db, nil
}

// Path returns the file the store lives in.
func (db *DB) Path() string { return db.path }

// Ping checks that the store answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// Close closes the store. It is safe to call more than once.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	return db.sql.Close() // database/sql makes a second Close a no-op
}

// stmt returns the statement for query in tx, prepared on the store once rather
// than in every transaction: the statements of the audit index's inserts, run for
// every batch. The caller closes it (the store's own stays open).
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	st, ok := db.stmts[query]
	if !ok {
		var err error
		if st, err = db.sql.PrepareContext(ctx, query); err != nil {
			db.stmtMu.Unlock()
			return nil, err
		}
		if db.stmts == nil {
			db.stmts = make(map[string]*sql.Stmt)
		}
		db.stmts[query] = st
	}
	db.stmtMu.Unlock()
	return tx.StmtContext(ctx, st), nil
}

// migration is one schema step, from migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		var v int
		if _, err := fmt.Sscanf(name, "%04d_", &v); err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a 4-digit version", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, each in its own transaction, every migration newer than the
// recorded schema version, up to version upTo unless it is 0. A store written by a
// newer clawbox is refused.
func (db *DB) migrate(ctx context.Context, upTo int) error {
	migs, err := loadMigrations()
	if err != nil {
		return err
	}
	if upTo > 0 {
		migs = slices.DeleteFunc(migs, func(m migration) bool { return m.version > upTo })
	}
	if _, err := db.sql.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := db.sql.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	known := map[int]bool{}
	for _, m := range migs {
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("schema version %d is newer than this clawbox understands: upgrade clawbox", v)
		}
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		tx, err := db.sql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name) VALUES (?, ?)`, m.version, m.name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
