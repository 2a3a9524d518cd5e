package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File format, version 1 (all integers are single bytes):
//
//	magic    8 bytes  "CLAWBOXC"
//	version  1 byte   1
//	salt    16 bytes  random, new on every write
//	nonce   12 bytes  random, new on every write
//	sealed   rest     AES-256-GCM(key, nonce, plaintext, aad = the 37 header bytes)
//
// key = HKDF-SHA256(master key, salt, "clawbox credentials v1 aead", 32). The
// plaintext is the JSON document fileBody. Because the header is the associated data,
// changing any header byte (salt, nonce, or the version, which is checked first) makes
// the file undecryptable rather than silently different.
const (
	fileMagic   = "CLAWBOXC"
	fileVersion = 1
	saltSize    = 16
	nonceSize   = 12
	headerSize  = len(fileMagic) + 1 + saltSize + nonceSize
	tagSize     = 16

	aeadInfo = "clawbox credentials v1 aead"
)

// Errors reading the store file. They say what is wrong and never include key material
// or contents; match them with errors.Is.
var (
	ErrDecrypt     = errors.New("cannot decrypt: wrong master key or tampered file")
	ErrTruncated   = errors.New("credential store is truncated")
	ErrNotStore    = errors.New("not a clawbox credential store (bad magic)")
	ErrVersion     = errors.New("unsupported credential store version")
	ErrCorruptBody = errors.New("credential store content is not valid")
)

// fileBody is the plaintext of the store file.
type fileBody struct {
	Entries []*entry `json:"entries"`
}

// seal encrypts entries into the bytes of a version-1 store file.
func seal(key MasterKey, entries []*entry) ([]byte, error) {
	if entries == nil {
		entries = []*entry{}
	}
	plain, err := json.Marshal(fileBody{Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("encode credential store: %w", err)
	}
	defer clear(plain)
	out := make([]byte, headerSize, headerSize+len(plain)+tagSize)
	copy(out, fileMagic)
	out[len(fileMagic)] = fileVersion
	salt := out[len(fileMagic)+1 : len(fileMagic)+1+saltSize]
	nonce := out[headerSize-nonceSize : headerSize]
	if _, err := rand.Read(out[len(fileMagic)+1 : headerSize]); err != nil {
		return nil, fmt.Errorf("credential store: random: %w", err)
	}
	aead, err := newAEAD(key, salt)
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, plain, out[:headerSize]), nil
}

// open decrypts and decodes the bytes of a store file.
func open(key MasterKey, data []byte) ([]*entry, error) {
	if len(data) < len(fileMagic)+1 {
		if bytes.HasPrefix([]byte(fileMagic), data) {
			return nil, ErrTruncated
		}
		return nil, ErrNotStore
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return nil, ErrNotStore
	}
	if v := data[len(fileMagic)]; v != fileVersion {
		return nil, fmt.Errorf("%w %d (this clawbox reads version %d)", ErrVersion, v, fileVersion)
	}
	if len(data) < headerSize+tagSize {
		return nil, ErrTruncated
	}
	header := data[:headerSize]
	salt := header[len(fileMagic)+1 : len(fileMagic)+1+saltSize]
	nonce := header[headerSize-nonceSize:]
	aead, err := newAEAD(key, salt)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, data[headerSize:], header)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(plain)
	var body fileBody
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		// The JSON error may quote content: keep it out of the message.
		return nil, ErrCorruptBody
	}
	seen := make(map[string]bool, len(body.Entries))
	for i, e := range body.Entries {
		if e == nil {
			return nil, ErrCorruptBody
		}
		// Name entries by position: a broken file may hold anything in a name.
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrCorruptBody, i, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%w: entry %d: duplicate name", ErrCorruptBody, i)
		}
		seen[e.Name] = true
	}
	return body.Entries, nil
}

func newAEAD(key MasterKey, salt []byte) (cipher.AEAD, error) {
	k := key.derive(salt, aeadInfo)
	defer clear(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("credential store: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("credential store: gcm: %w", err)
	}
	return aead, nil
}

// writeFileAtomic replaces path with data: a temp file created 0600 in the same
// directory, written, fsynced, renamed over path, then the directory fsynced. A reader
// sees the old file or the new one, never a mix, and the content is never readable by
// others, not even briefly.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write credential store: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp uses 0600 already; make it explicit in case of a future change.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write credential store: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write credential store: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write credential store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write credential store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write credential store: %w", err)
	}
	return syncDir(path)
}

// syncDir fsyncs the directory holding path, so a rename or create survives a crash.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
