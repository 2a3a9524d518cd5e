#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZTIME each, default 10s). The seed corpora in
# testdata/fuzz also run as plain tests in `go test`; this explores beyond them.
# A failure leaves its input in the package's testdata/fuzz/<Target>/ to reproduce
# with `go test -run '^Target$/name' ./pkg`.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-10s}"

# Each target at a trust boundary: package and function.
targets=(
  "./internal/egress FuzzPolicy"               # network allowlist rules and URL matching
  "./internal/egress FuzzDecodeProxyRequest"   # the door's POST /proxy body (sandbox input)
  "./internal/egress FuzzConnect"              # CONNECT targets and the connect-level policy decision
  "./internal/egress FuzzUnquoteInPlace"       # the door's in-place JSON string decoder
  "./internal/egress FuzzParseEnvelope"        # the door's one-pass POST /proxy envelope reader
  "./internal/egress FuzzBase64DecodeInPlace"  # the door's in-place base64 decoder
  "./internal/egress FuzzAppendProxyAnswer"    # the door's POST /proxy answer (upstream bytes) against encoding/json
  "./internal/sandbox FuzzImageAllowed"        # image references against the allowlist
  "./internal/secrets FuzzScan"                # leak scanning of outbound requests
  "./internal/secrets FuzzRedactJSON"          # redaction of JSON responses
  "./internal/secrets/leak FuzzDecodeRound"    # one round of decoding encoded forms
  "./internal/secrets/leak FuzzWriter"         # the streaming redactor across write cuts
  "./internal/secrets/leak FuzzCheckName"      # raw header names and methods
  "./internal/config FuzzParse"                # config.toml
  "./internal/wasm FuzzHostCallRequest"        # host_call requests from WASM guests
  "./internal/wasm FuzzInspectModule"          # guest module structure (limits before compiling)
  "./internal/audit FuzzRedactURL"             # URL query redaction in audit records
  "./internal/server FuzzDecodeJSON"           # every API request body
  "./internal/server FuzzExecFrames"           # exec output (sandbox bytes) into NDJSON frames
  "./internal/supervisor FuzzReadFrame"        # frames a (hostile) supervisor sends
  "./internal/supervisor FuzzValidatePath"     # file paths of the files API
)

# Fail if a fuzz target exists that this list does not run.
listed=$(printf '%s\n' "${targets[@]}" | awk '{print $2}' | sort)
found=$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' internal api client toolkit 2>/dev/null | sed 's/^func //' | sort -u)
missing=$(comm -13 <(echo "$listed") <(echo "$found"))
if [ -n "$missing" ]; then
  echo "scripts/fuzz.sh: fuzz targets not listed here: $missing" >&2
  exit 1
fi

# A real failure always leaves its input in testdata/fuzz/<Target>/. The fuzzing
# engine itself can also stop with "context deadline exceeded" and no input when a
# worker is slow to answer at the end of -fuzztime on a loaded machine: that is
# retried once, and only fails the run if it happens again.
# A target without a corpus directory yet counts 0 (find fails there: under
# pipefail that must not end the script).
corpus_count() { { find "$1/testdata/fuzz/$2" -type f 2>/dev/null || true; } | wc -l; }
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  for attempt in 1 2; do
    printf '\n==> %s %s (%s)\n' "$pkg" "$name" "$fuzztime"
    before=$(corpus_count "$pkg" "$name")
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
      break
    fi
    if [ "$(corpus_count "$pkg" "$name")" != "$before" ] || [ "$attempt" = 2 ]; then
      echo "scripts/fuzz.sh: $name failed" >&2
      exit 1
    fi
    echo "scripts/fuzz.sh: $name stopped without a failing input (fuzzing engine); trying once more" >&2
  done
done
echo
echo "all fuzz targets ran for $fuzztime without a failure"
