// Package secrets provides clawbox's credential store and everything the egress
// gateway does with credentials: binding them to destinations, injecting them into
// requests a sandbox makes, handing sandboxes harmless placeholders instead of the
// values, and finding values (and credential-shaped text) that are about to leave or
// coming back, so that untrusted code never sees or smuggles out a real credential.
//
// # Store file
//
// credentials.enc is a 37-byte header, then AES-256-GCM over a JSON document, with
// the header as associated data:
//
//	"CLAWBOXC" | version (1 byte, 1) | salt (16 bytes) | nonce (12 bytes) | ciphertext+tag
//
// The AEAD key is HKDF-SHA256(master key, salt, "clawbox credentials v1 aead"); salt
// and nonce are fresh on every write. The plaintext is {"entries":[{name, value, host,
// header, prefix, path_prefix?, methods?, port?, allow_http?, placeholder?,
// placeholder_query?, updated_at}]}. Reading distinguishes a file that is not a store
// (ErrNotStore), a version this build cannot read (ErrVersion), a short file
// (ErrTruncated), a wrong key or a modified file (ErrDecrypt: GCM cannot tell them
// apart) and a body that does not validate (ErrCorruptBody). A store that cannot be
// read is never overwritten. Writes are atomic: a temp file created 0600 in the same
// directory, fsync, rename, fsync of the directory. Writers (this process and another,
// such as an offline CLI) read the file afresh and hold an flock on
// credentials.enc.lock for the whole read-modify-write, so no update is lost.
//
// The master key is 32 bytes given as 64 hex characters, from CLAWBOX_MASTER_KEY or a
// key file (LoadMasterKey, GenerateKeyFile). Besides the AEAD key, it yields with HKDF
// a placeholder key (info "clawbox credentials v1 placeholder").
//
// # Live reload
//
// Open watches the store's directory (internal/watch, which also survives the directory
// being removed and re-created). Changes to the file, by this process
// or another (clawbox creds add), are debounced and reloaded; the new set replaces the
// old one atomically. A file that fails to load is logged and the last good set kept.
//
// # Bindings, injection and placeholders
//
// A credential is used only when granted (the caller's grants) and when the request
// matches its binding: host (exact, or *.domain for the domain and every name below
// it), port (default the scheme's), path prefix on a segment boundary (paths with dot
// segments or an encoded slash never match), methods, and https unless allow_http.
// Header mode sets header: prefix+value. Placeholder mode gives the sandbox a dummy of
// the same length and shape (the value's known prefix such as ghp_, github_pat_, sk-,
// xoxb- kept; the rest drawn from the value's own character classes with HMAC-SHA256
// under the placeholder key over name and value, so it is stable across restarts and
// reveals nothing of the value) and swaps it for the value on a matching request.
//
// # Leak detection
//
// The scanner and redactor live in package leak (internal/secrets/leak); each
// snapshot of the store builds one leak.Scanner from its values and placeholders.
// CheckOutbound, Redact and RedactJSON apply it. Values shorter than MinSecretLen (8)
// bytes are not scanned; a warning names them.
//
// No value or key appears in an error, a log line or a panic message; entries and
// keys print as [REDACTED].
package secrets
