// Command web_fetch GETs a page through the clawbox egress gateway and returns its
// text: HTML is reduced to readable text (scripts, styles and tags removed). A request
// the gateway refuses or cannot complete fails the call with the gateway's code.
package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/clawbox/clawbox/toolkit"
)

type input struct {
	URL       string `json:"url"`
	MaxLength int    `json:"max_length"` // bytes of content, default 50000
}

type output struct {
	URL         string `json:"url"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Content     string `json:"content"`
	Length      int    `json:"length"`
	Truncated   bool   `json:"truncated"`
}

var (
	scriptRE  = regexp.MustCompile(`(?is)<(script|style|noscript)\b.*?</(script|style|noscript)\s*>`)
	commentRE = regexp.MustCompile(`(?s)<!--.*?-->`)
	tagRE     = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRE   = regexp.MustCompile(`[ \t\r\f\v]+`)
	blankRE   = regexp.MustCompile(`\n\s*\n+`)
)

// htmlText reduces HTML to its visible text.
func htmlText(s string) string {
	s = scriptRE.ReplaceAllString(s, " ")
	s = commentRE.ReplaceAllString(s, " ")
	s = tagRE.ReplaceAllString(s, "\n")
	s = html.UnescapeString(s)
	s = spaceRE.ReplaceAllString(s, " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	s = blankRE.ReplaceAllString(strings.Join(lines, "\n"), "\n")
	return strings.TrimSpace(s)
}

// cut shortens s to at most n bytes without splitting a UTF-8 character.
func cut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

func main() {
	toolkit.RunTyped(func(ctx context.Context, in input) (output, error) {
		if in.URL == "" {
			return output{}, errors.New("missing url")
		}
		max := in.MaxLength
		if max <= 0 {
			max = 50000
		}
		resp, err := toolkit.HTTPRequest(ctx, toolkit.Request{URL: in.URL, Method: "GET", Headers: map[string]string{"Accept": "text/html, text/plain;q=0.9, */*;q=0.5"}})
		if err != nil {
			return output{}, fmt.Errorf("fetch %s: %w", in.URL, err)
		}
		ct := ""
		for k, v := range resp.Headers {
			if strings.EqualFold(k, "Content-Type") {
				ct = v
			}
		}
		content := resp.Body
		if strings.Contains(strings.ToLower(ct), "text/html") {
			content = htmlText(content)
		}
		content, truncated := cut(content, max)
		return output{URL: in.URL, Status: resp.Status, ContentType: ct, Content: content, Length: len(content), Truncated: truncated || resp.Truncated}, nil
	})
}
