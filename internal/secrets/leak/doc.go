// Package leak finds credential values, and credential-shaped text, in content that
// is about to leave a sandbox or coming back to one, and redacts them. It is the
// scanner behind the credential store's CheckOutbound, Redact and RedactJSON
// (package secrets builds one Scanner per snapshot of the store) and knows nothing
// of storage, bindings or injection.
//
// The scanner knows every value in the store of at least MinSecretLen (8) bytes;
// shorter values would match ordinary text and are not scanned (a warning names
// them). Each value is looked for plain, as lower- and upper-case hex, and as base64
// (standard and URL-safe alphabets) at each of the three byte alignments it can have
// inside a larger base64 text, padded or not: the needle is the run of base64
// characters that carry only the value's bits. Each text is also read after one to 10
// rounds of percent-decoding. All needles are found in one linear pass (a rolling
// hash over the shortest needle length), so the cost does not grow with the number
// of credentials. The seven credential regexes of the reference run on the same
// readings. Placeholders are needles too: one that is granted and sent to a matching
// destination is masked before the regexes run, anywhere else it is a leak.
//
// Redaction replaces every hit, encoded forms included (mapped back through the
// percent-decoding to the original bytes, and taking the base64 characters that mix
// value bits with their neighbours), by "[REDACTED]". RedactJSON does the same value
// by value, so its output stays valid JSON.
//
// Known limits: a value split across requests, headers or JSON values; other
// encodings (base32, compression, reversal, mixed-case hex, escapes of formats other
// than JSON). Outbound JSON bodies are also checked string by string after decoding
// their escapes.
package leak
