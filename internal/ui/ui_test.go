package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestServe: every file is served with its type, the CSP and the other security
// headers, and a matching If-None-Match is answered 304.
func TestServe(t *testing.T) {
	want := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	for _, name := range Names() {
		f, ok := Lookup(Prefix + name)
		if !ok {
			t.Fatalf("Lookup(%q) failed for a listed name", Prefix+name)
		}
		rec := httptest.NewRecorder()
		Serve(rec, httptest.NewRequest(http.MethodGet, Prefix+name, nil), f)
		h := rec.Header()
		if rec.Code != 200 || rec.Body.String() != string(f.Body) {
			t.Errorf("%s: %d, %d bytes", name, rec.Code, rec.Body.Len())
		}
		ext := path.Ext(f.Name)
		if h.Get("Content-Type") != want[ext] {
			t.Errorf("%s: Content-Type %q, want %q", name, h.Get("Content-Type"), want[ext])
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin", "ETag": f.ETag,
		} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", name, k, h.Get(k), v)
			}
		}
		req := httptest.NewRequest(http.MethodGet, Prefix+name, nil)
		req.Header.Set("If-None-Match", f.ETag)
		rec = httptest.NewRecorder()
		Serve(rec, req, f)
		if rec.Code != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", name, rec.Code)
		}
	}
	for _, p := range []string{"/ui", "/ui/missing.js", "/ui/js", "/other/index.html", "/ui/static/index.html"} {
		if _, ok := Lookup(p); ok {
			t.Errorf("Lookup(%q) found a file", p)
		}
	}
}

// TestCSPIsStrict guards the policy itself: a change that loosens it fails here.
func TestCSPIsStrict(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(CSP, ";") {
		d = strings.TrimSpace(d)
		name, value, _ := strings.Cut(d, " ")
		directives[name] = value
	}
	for name, value := range map[string]string{
		"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "connect-src": "'self'",
		"object-src": "'none'", "base-uri": "'none'", "form-action": "'none'", "frame-ancestors": "'none'",
		"require-trusted-types-for": "'script'", "trusted-types": "'none'",
	} {
		if directives[name] != value {
			t.Errorf("CSP %s = %q, want %q", name, directives[name], value)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "unsafe-hashes", "wasm-unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP allows %s: %s", bad, CSP)
		}
	}
}

// TestNoMarkupFromData reads the page's own sources: no HTML sink, no eval, no
// inline script, style or handler, nothing from another origin. (The CSP and
// Trusted Types refuse these at run time too; the browser test runs the page.)
func TestNoMarkupFromData(t *testing.T) {
	jsForbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function|setTimeout\(\s*['"` + "`" + `]|setInterval\(\s*['"` + "`" + `]|createContextualFragment|DOMParser|srcdoc|javascript:|localStorage|document\.cookie|EventSource|\.style\s*[.=[]|setAttribute\(\s*['"](style|on)`)
	foreignURL := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	// Not requests: the SVG namespace name and a form's placeholder text.
	allowedURL := map[string]bool{"http://www.w3.org": true, "https://api.github.com": true}
	htmlForbidden := regexp.MustCompile(`(?i)<script(?:[^>]*)>[^<]+</script>|<style|\son[a-z]+\s*=|\sstyle\s*=|javascript:`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := static.ReadFile(p)
		src := string(b)
		switch path.Ext(p) {
		case ".js":
			for _, line := range strings.Split(src, "\n") {
				code, _, _ := strings.Cut(line, "// ")
				if m := jsForbidden.FindString(code); m != "" {
					t.Errorf("%s: %q in %q", p, m, strings.TrimSpace(line))
				}
			}
		case ".html":
			if m := htmlForbidden.FindString(src); m != "" {
				t.Errorf("%s: inline %q", p, m)
			}
			for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(src, -1) {
				if !strings.Contains(m, `src="`) {
					t.Errorf("%s: script without src: %s", p, m)
				}
			}
		case ".css":
			if strings.Contains(src, "@import") || strings.Contains(src, "url(") {
				t.Errorf("%s: loads something (@import or url())", p)
			}
		}
		if path.Ext(p) != ".svg" {
			for _, m := range foreignURL.FindAllString(src, -1) {
				if !allowedURL[m] {
					t.Errorf("%s: refers to another origin: %s", p, m)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReferencesResolve: every file the page loads (index.html's src and href,
// every module import) is embedded, so a missing file cannot ship unnoticed.
func TestReferencesResolve(t *testing.T) {
	idx, _ := Lookup(Prefix)
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(idx.Body), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html refers to %d files", len(refs))
	}
	check := func(from, ref string) {
		t.Helper()
		if strings.Contains(ref, ":") {
			t.Errorf("%s refers to %s: another origin or scheme", from, ref)
			return
		}
		p := path.Join(path.Dir(Prefix+from), ref)
		if _, ok := Lookup(p); !ok {
			t.Errorf("%s refers to %s (%s), which is not embedded", from, ref, p)
		}
	}
	for _, m := range refs {
		check("index.html", m[1])
	}
	imp := regexp.MustCompile(`(?m)^import .* from '([^']+)';$`)
	n := 0
	for _, name := range Names() {
		if path.Ext(name) != ".js" {
			continue
		}
		f, _ := Lookup(Prefix + name)
		for _, m := range imp.FindAllStringSubmatch(string(f.Body), -1) {
			check(name, m[1])
			n++
		}
	}
	if n < 5 {
		t.Errorf("only %d imports found", n)
	}
}
