// Command hash digests its input: SHA-256 by default, or SHA-512, SHA-1 or MD5.
package main

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"github.com/clawbox/clawbox/toolkit"
)

type input struct {
	Data      string `json:"data"`
	Encoding  string `json:"encoding"`  // of data: "utf8" (default) or "base64"
	Algorithm string `json:"algorithm"` // sha256 (default), sha512, sha1, md5
}

type output struct {
	Algorithm string `json:"algorithm"`
	Hex       string `json:"hex"`
	Base64    string `json:"base64"`
	Length    int    `json:"length"` // bytes hashed
}

var algorithms = map[string]func() hash.Hash{
	"sha256": sha256.New,
	"sha512": sha512.New,
	"sha1":   sha1.New,
	"md5":    md5.New,
}

func digest(in input) (output, error) {
	alg := strings.ToLower(strings.ReplaceAll(in.Algorithm, "-", ""))
	if alg == "" {
		alg = "sha256"
	}
	newHash, ok := algorithms[alg]
	if !ok {
		return output{}, fmt.Errorf("unknown algorithm %q (want sha256, sha512, sha1 or md5)", in.Algorithm)
	}
	data := []byte(in.Data)
	switch in.Encoding {
	case "", "utf8", "utf-8":
	case "base64":
		b, err := base64.StdEncoding.DecodeString(in.Data)
		if err != nil {
			return output{}, fmt.Errorf("data is not valid base64: %w", err)
		}
		data = b
	default:
		return output{}, fmt.Errorf("unknown encoding %q (want utf8 or base64)", in.Encoding)
	}
	h := newHash()
	h.Write(data)
	sum := h.Sum(nil)
	return output{Algorithm: alg, Hex: hex.EncodeToString(sum), Base64: base64.StdEncoding.EncodeToString(sum), Length: len(data)}, nil
}

func main() {
	toolkit.RunTyped(func(ctx context.Context, in input) (output, error) { return digest(in) })
}
