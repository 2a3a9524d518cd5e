package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, p
}

func TestOpenCreatesWALStoreWithMigrations(t *testing.T) {
	db, p := openTemp(t)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v, want 0600", st.Mode().Perm())
	}
	var mode string
	if err := db.sql.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	migs, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion(context.Background())
	if err != nil || v != migs[len(migs)-1].version {
		t.Errorf("schema version %d, %v; want %d", v, err, migs[len(migs)-1].version)
	}
}

func TestReopenKeepsDataAndDoesNotReapply(t *testing.T) {
	ctx := context.Background()
	db, p := openTemp(t)
	if _, err := db.MetaSetDefault(ctx, "instance_id", "abc"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := Open(ctx, p)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	v, ok, err := db2.Meta(ctx, "instance_id")
	if err != nil || !ok || v != "abc" {
		t.Errorf("after reopen Meta = %q %v %v", v, ok, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	db, p := openTemp(t)
	if _, err := db.sql.Exec(`INSERT INTO schema_migrations(version, name) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opening a newer store: err = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, ""); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "missing", "state.db")); err == nil {
		t.Error("missing parent directory accepted")
	}
	// A file that is not SQLite is refused without being overwritten.
	p := filepath.Join(t.TempDir(), "state.db")
	junk := []byte(strings.Repeat("not a database ", 100))
	os.WriteFile(p, junk, 0o600)
	if _, err := Open(ctx, p); err == nil {
		t.Error("a non-SQLite file was accepted")
	}
	if b, _ := os.ReadFile(p); string(b) != string(junk) {
		t.Error("a non-SQLite file was modified")
	}
}

func TestConcurrentMetaSetDefault(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := db.MetaSetDefault(ctx, "k", string(rune('a'+i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		}()
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] {
			t.Fatalf("concurrent callers saw different values: %v", got)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	db, _ := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
