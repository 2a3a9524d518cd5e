package sandbox

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// newToken returns a fresh door token (32 random bytes, hex) and its SHA-256.
func newToken() (string, []byte) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on a broken source)
	tok := hex.EncodeToString(b[:])
	return tok, hashToken(tok)
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// tokenMatches hashes the presented token and compares it with hash in constant time.
func tokenMatches(hash []byte, presented string) bool {
	if len(hash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(hash, hashToken(presented)) == 1
}
