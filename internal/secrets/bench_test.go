package secrets

import (
	"bytes"
	"fmt"
	"net/url"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// benchStore holds 50 credentials, the order of a busy installation.
func benchStore(b *testing.B) *Store {
	s := openTestStore(b, "")
	for i := range 50 {
		mustPut(b, s, fmt.Sprintf("CRED_%d", i), api.PutCredentialRequest{
			Value: fmt.Sprintf("bench-secret-%02d-0123456789abcdefghij", i), Host: "api.example.com", Placeholder: i%2 == 0,
		})
	}
	return s
}

// benchBody is 1 MiB of JSON-ish text with no secret in it.
func benchBody() []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < 1<<20; i++ {
		fmt.Fprintf(&buf, `{"id":%d,"name":"item %d","tags":["a%%20b","c"],"blob":"QUJDREVGR0hJSktMTU5PUA=="},`, i, i)
	}
	return buf.Bytes()
}

func BenchmarkRedact1MiB(b *testing.B) {
	s := benchStore(b)
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		s.Redact(body)
	}
}

func BenchmarkCheckOutbound1MiB(b *testing.B) {
	s := benchStore(b)
	body := benchBody()
	u, _ := url.Parse("https://api.example.com/upload")
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if err := s.CheckOutbound(nil, "POST", u, nil, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedactJSON1MiB(b *testing.B) {
	s := benchStore(b)
	body := append([]byte{'['}, benchBody()...)
	body[len(body)-1] = ']'
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.RedactJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
