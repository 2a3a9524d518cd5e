// Package ui is clawbox's dashboard: plain HTML, CSS and JavaScript files embedded in
// the binary and served at /ui/ by internal/server, behind the same Host and Origin
// checks as the API. There is no build step and nothing is fetched from another
// origin: the page talks only to the API of the server that served it, with the
// token the user types into its login form (kept in sessionStorage, sent as an
// Authorization header, never put in a URL or a cookie).
//
// Everything the page shows comes from sandboxes, logs, URLs and tools, so it is
// hostile: the scripts build the page with createElement and textContent only, and
// the Content-Security-Policy sent with every file (CSP) forbids inline scripts and
// styles, eval, plugins, framing and any other origin, and requires Trusted Types
// for the DOM's HTML sinks, so that an innerHTML assignment of a string fails
// instead of parsing markup.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

// Prefix is the URL path the dashboard is served under.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every dashboard file. connect-src 'self'
// lets the page call the API of its own origin and nothing else.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed static
var static embed.FS

// File is one embedded dashboard file.
type File struct {
	Name        string // path below Prefix ("index.html", "js/app.js")
	ContentType string
	Body        []byte
	ETag        string
}

// files are the embedded files by URL path below Prefix ("" is index.html).
var files = func() map[string]File {
	m := map[string]File{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		sum := sha256.Sum256(b)
		m[name] = File{Name: name, ContentType: ct, Body: b, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: embedded files: " + err.Error()) // the embed is fixed at build time
	}
	m[""] = m["index.html"]
	return m
}()

// Lookup returns the file served at urlPath ("/ui/", "/ui/js/app.js"), if any.
func Lookup(urlPath string) (File, bool) {
	name, ok := strings.CutPrefix(urlPath, Prefix)
	if !ok {
		return File{}, false
	}
	f, ok := files[name]
	return f, ok
}

// Names lists the paths below Prefix of every file, sorted ("" for the index).
func Names() []string {
	var out []string
	for n := range files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Serve writes f for a GET or HEAD request, with the dashboard's security headers.
// A request whose If-None-Match names f's ETag is answered 304.
func Serve(w http.ResponseWriter, r *http.Request, f File) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", f.ContentType)
	h.Set("ETag", f.ETag)
	http.ServeContent(w, r, f.Name, time.Time{}, bytes.NewReader(f.Body))
}
