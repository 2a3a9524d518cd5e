package sandbox

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/clawbox/clawbox/api"
)

// NormalizeImage parses an image reference the way the Docker engine does
// ("alpine" → "docker.io/library/alpine:latest") and returns it in full.
func NormalizeImage(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// ImageAllowed reports whether image is allowed by the allowlist: both sides are
// normalised with the Docker reference parser; an entry without a trailing "/" allows
// exactly that repository with any tag or digest; an entry ending in "/" allows every
// repository under that path (a path boundary, so "ghcr.io/acme/" never allows
// "ghcr.io/acme-evil/x"). An empty list allows nothing. It returns the normalised
// reference. A malformed image is 400 invalid_request; a denied one is 403
// image_not_allowed.
func ImageAllowed(image string, allowed []string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", api.Errorf(api.CodeInvalidRequest, "image %q is not a valid image reference", image)
	}
	repo := named.Name()
	for _, entry := range allowed {
		if matchImageEntry(repo, entry) {
			return reference.TagNameOnly(named).String(), nil
		}
	}
	return "", api.Errorf(api.CodeImageNotAllowed, "image %q is not allowed by containers.allowed_images", image)
}

// matchImageEntry matches a normalised repository name against one allowlist entry.
// A malformed entry matches nothing.
func matchImageEntry(repo, entry string) bool {
	if entry == "" {
		return false
	}
	if prefix, ok := strings.CutSuffix(entry, "/"); ok {
		if prefix == "" || strings.HasSuffix(prefix, "/") {
			return false
		}
		// Normalise the path with a dummy two-component tail, so that "clawbox/"
		// becomes "docker.io/clawbox/" and "docker.io/" stays "docker.io/".
		n, err := reference.ParseNormalizedNamed(prefix + "/x/x")
		if err != nil {
			return false
		}
		full, ok := strings.CutSuffix(n.Name(), "x/x")
		return ok && strings.HasPrefix(repo, full)
	}
	n, err := reference.ParseNormalizedNamed(entry)
	if err != nil {
		return false
	}
	return n.Name() == repo
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv are the keys a spawn may not set (compared upper-cased); any key
// starting with CLAWBOX_ is reserved too. It holds every key of doorEnv.
var reservedEnv = []string{
	"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
	"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV",
	"PYTHONSTARTUP", "NODE_OPTIONS", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT",
}

// Bounds on a spawn's environment.
const (
	maxEnvVars     = 256
	maxEnvKeyLen   = 256
	maxEnvValueLen = 32 << 10
)

// CheckEnv validates a spawn's environment: keys match ^[A-Za-z_][A-Za-z0-9_]*$,
// values hold no NUL, and no key is reserved (case-insensitively). A violation is 400
// invalid_request naming the key.
func CheckEnv(env map[string]string) error {
	if len(env) > maxEnvVars {
		return api.Errorf(api.CodeInvalidRequest, "env has %d variables, at most %d are allowed", len(env), maxEnvVars)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if len(k) > maxEnvKeyLen || !envKeyRE.MatchString(k) {
			return &api.Error{Code: api.CodeInvalidRequest, Message: fmt.Sprintf("env key %q is not a valid variable name", k), Details: map[string]string{"field": "env"}}
		}
		if strings.IndexByte(v, 0) >= 0 || len(v) > maxEnvValueLen {
			return &api.Error{Code: api.CodeInvalidRequest, Message: fmt.Sprintf("env value of %q contains NUL or is too long", k), Details: map[string]string{"field": "env." + k}}
		}
		if up := strings.ToUpper(k); strings.HasPrefix(up, "CLAWBOX_") || slices.Contains(reservedEnv, up) {
			return &api.Error{Code: api.CodeInvalidRequest, Message: fmt.Sprintf("env key %q is reserved", k), Details: map[string]string{"field": "env." + k}}
		}
	}
	return nil
}
