// Package leak finds credential values, and credential-shaped text, in content that
// is about to leave a sandbox or coming back to one, and redacts them. It is the
// scanner behind the credential store's CheckOutbound, Redact and RedactJSON
// (package secrets builds one Scanner per snapshot of the store) and knows nothing
// of storage, bindings or injection.
//
// # Forms
//
// A Scanner knows every value of at least MinSecretLen (8) bytes; shorter values
// would match ordinary text and are not scanned. Each value is looked for plain, as
// hex (any letter case), and as base64 (standard and URL-safe alphabets) at each of
// the three byte alignments it can have inside a larger base64 text, padded or not:
// the needle is the run of base64 characters that carry only the value's bits.
// Every text is read several ways (readings): as it is; after each of up to 10
// rounds of decoding, where a round decodes every %XX (either case) and every
// backslash escape (\uXXXX with surrogate pairs, \/ as PHP's json_encode writes it,
// \" \\ \b \f \n \r \t, \xXX) wherever it is, valid JSON or not, so JSON nested in a
// JSON string is read after two rounds; and each of those with CR and LF removed,
// searched for hex and base64 only (MIME at 76 columns, PEM at 64, xxd). Mode Name
// (CheckName, RedactName), for header names and methods, also matches plain values
// and placeholders in any ASCII letter case, since canonicalisation changes the
// case. The seven credential regexes of the reference run on every reading but the
// line-stripped ones. Placeholders are needles too: one that the caller allows is
// masked before the regexes run, anywhere else it is a leak.
//
// # Cost
//
// All needles of a set are found in one linear pass (a rolling hash over the shortest
// needle length), so the cost does not grow with the number of credentials. A text
// of n bytes has at most 22 readings (11 decoding levels, each with and without line
// breaks), each made and searched in O(n); a round is made only when the previous
// one changed something, so ordinary text costs one or two passes. Redaction keeps
// an offset map (4 bytes a byte) per reading. There is no quadratic step: the
// regexes are anchored at keyword hits and bounded by a 512-byte window.
// BenchmarkCheck1MiB and friends measure it.
//
// # Redaction
//
// Redaction replaces every hit, encoded forms included (mapped back through the
// decoding to the original bytes, and taking the base64 characters that mix value
// bits with their neighbours), by "[REDACTED]". Only the value's bytes are replaced:
// for a pattern such as TOKEN=…, "password":"…" or Bearer …, the key name and
// separator are kept. RedactJSON does the same value by value, so its output stays
// valid JSON. Writer redacts a stream with a carry-over window (see its constants):
// its output is Redact of the whole stream whatever the write boundaries, for hits
// whose encoded form is shorter than the window.
//
// Known limits: a value split across requests, headers or JSON values; other
// transformations (encryption, compression, base32, reversal); a value whose encoded
// form is longer than a Writer's window, split across its writes.
package leak
