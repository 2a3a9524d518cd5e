package secrets

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// KeySize is the length of the master key in bytes (64 hex characters).
const KeySize = 32

// ErrNoMasterKey means neither CLAWBOX_MASTER_KEY nor a key file supplied a key. The
// server then runs without credentials.
var ErrNoMasterKey = errors.New("no master key: set CLAWBOX_MASTER_KEY or credentials.key_file (clawbox init writes one)")

// MasterKey is the 32-byte key of the credential store. It never prints: String,
// GoString and LogValue show "[REDACTED]".
type MasterKey struct {
	b [KeySize]byte
}

// String implements fmt.Stringer without revealing the key.
func (MasterKey) String() string { return "MasterKey([REDACTED])" }

// GoString implements fmt.GoStringer without revealing the key.
func (MasterKey) GoString() string { return "MasterKey([REDACTED])" }

// LogValue implements slog.LogValuer without revealing the key.
func (MasterKey) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// IsZero reports whether k is the zero key (not loaded).
func (k MasterKey) IsZero() bool { return k.b == [KeySize]byte{} }

// derive returns a 32-byte subkey for one purpose (HKDF-SHA256, RFC 5869).
func (k MasterKey) derive(salt []byte, info string) []byte {
	out, err := hkdf.Key(sha256.New, k.b[:], salt, info, 32)
	if err != nil {
		// Only possible for an out-of-range length, which 32 is not.
		panic("secrets: hkdf: invalid key length")
	}
	return out
}

// ParseMasterKey parses 64 hex characters (surrounding white space is ignored, either
// case). The error never contains the text it was given.
func ParseMasterKey(s string) (MasterKey, error) {
	var k MasterKey
	s = strings.TrimSpace(s)
	if len(s) != 2*KeySize {
		return k, fmt.Errorf("invalid master key: must be %d hex characters (%d bytes), got %d characters", 2*KeySize, KeySize, len(s))
	}
	// hex's own error quotes the offending character: do not wrap it.
	if _, err := hex.Decode(k.b[:], []byte(s)); err != nil {
		return MasterKey{}, errors.New("invalid master key: not a hex string")
	}
	if k.IsZero() {
		return MasterKey{}, errors.New("invalid master key: all zero")
	}
	return k, nil
}

// LoadMasterKey returns the master key from envValue (the value of
// CLAWBOX_MASTER_KEY, which wins when non-empty) or else from the key file at keyFile
// (64 hex characters, as GenerateKeyFile writes it). A key file that others may read
// is refused. It returns ErrNoMasterKey when envValue is empty and keyFile is empty or
// does not exist.
func LoadMasterKey(envValue, keyFile string) (MasterKey, error) {
	if strings.TrimSpace(envValue) != "" {
		k, err := ParseMasterKey(envValue)
		if err != nil {
			return MasterKey{}, fmt.Errorf("CLAWBOX_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	if keyFile == "" {
		return MasterKey{}, ErrNoMasterKey
	}
	f, err := os.Open(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return MasterKey{}, ErrNoMasterKey
	}
	if err != nil {
		return MasterKey{}, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return MasterKey{}, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	if !st.Mode().IsRegular() {
		return MasterKey{}, fmt.Errorf("key file %s: not a regular file", keyFile)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return MasterKey{}, fmt.Errorf("key file %s: mode %04o lets others read it; run chmod 600 %s", keyFile, perm, keyFile)
	}
	buf := make([]byte, 256)
	n, err := f.Read(buf)
	if err != nil {
		return MasterKey{}, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	k, err := ParseMasterKey(string(buf[:n]))
	clear(buf)
	if err != nil {
		return MasterKey{}, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	return k, nil
}

// GenerateKeyFile writes a new random master key to path as 64 lower-case hex
// characters and a newline, mode 0600, and returns it. It never overwrites: an
// existing path is an error (fs.ErrExist).
func GenerateKeyFile(path string) (MasterKey, error) {
	var k MasterKey
	if _, err := rand.Read(k.b[:]); err != nil {
		return MasterKey{}, fmt.Errorf("generate master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return MasterKey{}, fmt.Errorf("create key file: %w", err)
	}
	buf := make([]byte, 2*KeySize+1)
	hex.Encode(buf, k.b[:])
	buf[len(buf)-1] = '\n'
	_, werr := f.Write(buf)
	clear(buf)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return MasterKey{}, fmt.Errorf("write key file: %w", werr)
	}
	if err := syncDir(path); err != nil {
		return MasterKey{}, err
	}
	return k, nil
}
