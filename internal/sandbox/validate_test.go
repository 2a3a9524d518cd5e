package sandbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// errField returns the field an invalid_request error names.
func errField(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		if d, ok := e.Details.(map[string]string); ok {
			return d["field"]
		}
	}
	return ""
}

func TestCheckLabels(t *testing.T) {
	many := map[string]string{}
	for i := range maxLabels + 1 {
		many["k"+strings.Repeat("x", i)] = "v"
	}
	tests := []struct {
		name   string
		labels map[string]string
		field  string // "" means valid
	}{
		{"none", nil, ""},
		{"ordinary", map[string]string{"team": "infra", "app.kubernetes.io/name": "web", "run_id": "", "A-1": "ünïcode ok"}, ""},
		{"too many", many, "labels"},
		{"empty key", map[string]string{"": "v"}, "labels"},
		{"key with space", map[string]string{"a b": "v"}, "labels"},
		{"key ending in a dot", map[string]string{"a.": "v"}, "labels"},
		{"key with =", map[string]string{"a=b": "v"}, "labels"},
		{"key too long", map[string]string{strings.Repeat("k", maxLabelKeyLen+1): "v"}, "labels"},
		{"clawbox's own namespace", map[string]string{"clawbox.instance": "other"}, "labels.clawbox.instance"},
		{"clawbox's own namespace in capitals", map[string]string{"ClawBox.task": "x"}, "labels.ClawBox.task"},
		{"value too long", map[string]string{"k": strings.Repeat("v", maxLabelValueLen+1)}, "labels.k"},
		{"value with a newline", map[string]string{"k": "a\nb"}, "labels.k"},
		{"value not UTF-8", map[string]string{"k": "\xff"}, "labels.k"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLabels(tc.labels)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if errCode(err) != api.CodeInvalidRequest || errField(err) != tc.field {
				t.Fatalf("CheckLabels = %v (field %q), want invalid_request on %q", err, errField(err), tc.field)
			}
		})
	}
}

func TestParseLabelSelector(t *testing.T) {
	got, err := ParseLabelSelector([]string{"team=infra", "env=", "team=infra"})
	if err != nil || len(got) != 2 || got["team"] != "infra" || got["env"] != "" {
		t.Fatalf("selector %v %v", got, err)
	}
	if got, err := ParseLabelSelector(nil); got != nil || err != nil {
		t.Fatalf("empty selector %v %v", got, err)
	}
	for _, bad := range [][]string{{"team"}, {"=v"}, {"a b=c"}, {"team=a", "team=b"}} {
		if _, err := ParseLabelSelector(bad); errCode(err) != api.CodeInvalidRequest || errField(err) != "label" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if !matchLabels(map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1"}) ||
		matchLabels(map[string]string{"a": "1"}, map[string]string{"a": "1", "b": "2"}) ||
		matchLabels(nil, map[string]string{"a": ""}) || !matchLabels(nil, nil) {
		t.Error("matchLabels")
	}
}
