package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSnapshotIsolation: instances restored from a snapshot, in memory recycled
// from earlier calls, see nothing of those calls. Each call stores its value in a
// package variable, counts itself, and fills a fresh 8 MiB allocation (beyond the
// snapshot's memory: the Go runtime grows the heap and takes the new pages as zero)
// with a pattern; every call must find no previous value, a count of one and zero
// bytes.
func TestSnapshotIsolation(t *testing.T) {
	for _, size := range []int{1, 2} {
		t.Run(fmt.Sprintf("pool of %d", size), func(t *testing.T) {
			e := newTestEngine(t, Config{PoolSize: size})
			m := compile(t, e, "guest", guests.reactor)
			for i := range 12 {
				n := 8 << 20
				if i%3 == 1 {
					n = 64 << 10 // a call that does not grow the memory after one that did
				}
				params := fmt.Sprintf(`{"mode":"state","n":%d,"value":"secret-%d"}`, n, i)
				res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(params)})
				if err != nil {
					t.Fatal(err)
				}
				var out struct {
					Previous json.RawMessage `json:"previous"`
					Calls    int             `json:"calls"`
					Dirty    int             `json:"dirty"`
				}
				if err := json.Unmarshal(res.Output, &out); err != nil {
					t.Fatalf("call %d: %s: %v", i, res.Output, err)
				}
				if string(out.Previous) != "null" || out.Calls != 1 || out.Dirty != 0 {
					t.Fatalf("call %d saw an earlier call: %s", i, res.Output)
				}
			}
			if m.pool.load() == nil {
				t.Fatal("no snapshot was taken: the calls did not test restored instances")
			}
			if m.pool.reused.Load() == 0 {
				t.Fatal("no instance was restored in a recycled memory")
			}
		})
	}
}

// TestSnapshotCryptoRandPerCall: crypto/rand reads the host's randomness in every
// call, so restored instances do not share it (unlike the runtime's seeds, which
// _initialize made).
func TestSnapshotCryptoRandPerCall(t *testing.T) {
	e := newTestEngine(t, Config{})
	m := compile(t, e, "guest", guests.reactor)
	seen := map[string]bool{}
	for i := range 4 {
		res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"random"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(res.Output)] {
			t.Fatalf("call %d read the same crypto/rand bytes as an earlier call: %s", i, res.Output)
		}
		seen[string(res.Output)] = true
	}
	if m.pool.load() == nil {
		t.Fatal("no snapshot: the calls did not test restored instances")
	}
}

// TestSnapshotFormRefusals: modules whose state a snapshot cannot hold, or whose
// instantiation the engine cannot reproduce, are compiled as they are; the others
// keep their behaviour in the snapshot form. The modules are written in the text
// format under testdata/snapshot and were assembled with wat2wasm (wabt); the test
// assembles them again when wat2wasm is installed, to check the committed binaries.
func TestSnapshotFormRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"start", false},           // a start function runs before the engine copies data
		{"imported_global", false}, // shared with its exporter
		{"v128_global", false},     // a mutable global of a type a snapshot does not hold
		{"expr_offset", false},     // a data segment at an offset that is not a constant
		{"plain", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := readWat(t, tc.name)
			if _, err := inspectModule(bin, ModuleLimits{}.withDefaults()); err != nil {
				t.Fatal(err)
			}
			f, ok, err := newSnapshotForm(bin)
			if err != nil || ok != tc.ok {
				t.Fatalf("newSnapshotForm: ok %v, err %v; want ok %v", ok, err, tc.ok)
			}
			if ok && (len(f.globals) != 1 || len(f.data.segs) != 2 || string(f.data.bytes) != "AB") {
				t.Fatalf("form: globals %v, data %+v; want 1 global and the segments A and B", f.globals, f.data)
			}
		})
	}
}

// TestSnapshotFormRuns: the plain module (a mutable global and two data segments,
// one passive segment and a data count section) behaves the same compiled as it is
// and in its snapshot form, pooled or not: its clawbox_run exits 0 only when the
// memory holds both active segments, the global has the value _initialize set,
// and memory.init from the passive segment works.
func TestSnapshotFormRuns(t *testing.T) {
	bin := readWat(t, "plain")
	for _, pool := range []int{-1, 2} {
		e := newTestEngine(t, Config{PoolSize: pool})
		m := compile(t, e, "plain", bin)
		for i := range 4 {
			if _, err := m.Execute(context.Background(), Call{}); err != nil {
				t.Fatalf("pool %d, call %d: %v", pool, i, err)
			}
		}
	}
}

func readWat(t *testing.T, name string) []byte {
	t.Helper()
	wasmPath := filepath.Join("testdata", "snapshot", name+".wasm")
	bin, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	if tool, err := exec.LookPath("wat2wasm"); err == nil {
		out := filepath.Join(t.TempDir(), name+".wasm")
		cmd := exec.Command(tool, "--enable-all", "-o", out, filepath.Join("testdata", "snapshot", name+".wat"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm: %v: %s", err, b)
		}
		fresh, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if string(fresh) != string(bin) {
			t.Fatalf("%s is stale: wat2wasm --enable-all -o %s %s", wasmPath, wasmPath, filepath.Join("testdata", "snapshot", name+".wat"))
		}
	}
	return bin
}
