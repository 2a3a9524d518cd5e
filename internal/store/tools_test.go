package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
)

func TestToolManifestsPersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		manifest    string
		wantCreated bool
	}{
		{"echo", `{"tool":{"name":"echo","description":"v1"}}`, true},
		{"hash", `{"tool":{"name":"hash","description":"h"}}`, true},
		{"echo", `{"tool":{"name":"echo","description":"v2"}}`, false},
	}
	for _, s := range steps {
		created, err := db.PutToolManifest(ctx, s.name, json.RawMessage(s.manifest))
		if err != nil {
			t.Fatal(err)
		}
		if created != s.wantCreated {
			t.Errorf("put %s: created = %v, want %v", s.name, created, s.wantCreated)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.ToolManifests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"echo": `{"tool":{"name":"echo","description":"v2"}}`,
		"hash": `{"tool":{"name":"hash","description":"h"}}`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d manifests, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}

	for _, tc := range []struct {
		name string
		want bool
	}{{"hash", true}, {"hash", false}, {"nope", false}} {
		ok, err := db.DeleteToolManifest(ctx, tc.name)
		if err != nil || ok != tc.want {
			t.Errorf("delete %s = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
	}
}
