package secrets

import "github.com/clawbox/clawbox/internal/secrets/leak"

// MinSecretLen is the shortest value the leak scanner looks for (leak.MinSecretLen).
// Shorter values are stored and injected but not scanned for; Store logs a warning
// naming such a credential.
const MinSecretLen = leak.MinSecretLen

// ErrNotJSON is returned by RedactJSON when its input is not valid JSON; the bytes
// returned with it are the input redacted as text (leak.ErrNotJSON).
var ErrNotJSON = leak.ErrNotJSON
