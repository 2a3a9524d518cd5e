package audit

import (
	"net/url"
	"strings"
)

// Redacted replaces every query value in a URL written to the audit log.
const Redacted = "REDACTED"

// RedactURL returns u as it may appear in the audit log: the user information and the
// fragment are dropped, and every query value is replaced with REDACTED while keys keep
// their order (a key without a value gets one too, so nothing after a key survives).
// The path is kept as it is. A nil URL gives "".
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.Fragment = ""
	c.RawFragment = ""
	if c.RawQuery != "" {
		c.RawQuery = redactQuery(c.RawQuery)
	}
	if u.User != nil && c.Scheme == "" && c.Host == "" {
		// The authority held only user information ("//user@/path"). Without it
		// String writes no "//", and a path that itself starts with "//" would read
		// back as an authority; keep the empty authority instead.
		return "//" + c.String()
	}
	return c.String()
}

// redactQuery rewrites a raw query so that each &-separated pair becomes key=REDACTED.
// Keys are decoded and encoded again, so that an undecodable key cannot carry raw
// bytes into the log; an undecodable key is replaced as a whole.
func redactQuery(raw string) string {
	var b strings.Builder
	first := true
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		k, err := url.QueryUnescape(key)
		if err != nil {
			k = Redacted
		}
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(Redacted)
	}
	return b.String()
}
