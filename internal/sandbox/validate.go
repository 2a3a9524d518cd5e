package sandbox

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clawbox/clawbox/api"
)

// This file checks spawn and update requests against the server policy; it holds
// no state and talks to nothing, so every decision is testable on its own.

// plan is a validated spawn request.
type plan struct {
	policy      Policy
	image       string
	env         map[string]string
	allowlist   []string
	credentials []string
	memoryMB    int64
	cpuShares   int64
	nanoCPUs    int64
	timeout     time.Duration
	logLimit    int64
	labels      map[string]string // nil when none
	workspace   bool
}

func invalid(field, format string, args ...any) error {
	return &api.Error{Code: api.CodeInvalidRequest, Message: fmt.Sprintf(format, args...), Details: map[string]string{"field": field}}
}

// validate checks a request against the server policy and fills in defaults.
func (m *Manager) validate(req *api.ContainerSpawnRequest) (*plan, error) {
	p := &plan{}
	if len(req.Task) > 64<<10 {
		return nil, invalid("task", "task is longer than 64 KiB")
	}
	switch pol := strings.ToLower(req.Policy); pol {
	case "", api.SandboxPolicyContainer:
		p.policy = PolicyContainer
	case api.SandboxPolicyContainerDirect:
		p.policy = PolicyContainerDirect
	case api.SandboxPolicyWasmOnly:
		return nil, invalid("policy", "policy %q does not run containers", req.Policy)
	default:
		return nil, invalid("policy", "unknown policy %q", req.Policy)
	}
	if !slices.ContainsFunc(m.cfg.AllowedPolicies, func(a string) bool { return strings.EqualFold(a, string(p.policy)) }) {
		return nil, api.Errorf(api.CodePolicyDenied, "sandbox policy %q is not allowed by container_policy.allowed_policies", p.policy)
	}
	image := req.Image
	if image == "" {
		image = m.cfg.DefaultImage
	}
	img, err := ImageAllowed(image, m.cfg.AllowedImages)
	if err != nil {
		return nil, err
	}
	p.image = img
	if err := CheckEnv(req.Env); err != nil {
		return nil, err
	}
	p.env = req.Env
	if err := CheckLabels(req.Labels); err != nil {
		return nil, err
	}
	if len(req.Labels) > 0 {
		p.labels = maps.Clone(req.Labels)
	}
	caps := req.Capabilities
	if caps == nil {
		caps = &api.ContainerCapabilities{}
	}
	for _, c := range caps.Credentials {
		if !slices.Contains(m.cfg.AllowedCredentials, c) {
			return nil, api.Errorf(api.CodePolicyDenied, "credential %q is not allowed by container_policy.allowed_credentials", c)
		}
	}
	if p.policy == PolicyContainerDirect && (len(caps.Credentials) > 0 || caps.Network != nil) {
		return nil, invalid("capabilities", "policy container_direct has no egress door: network and credentials cannot be requested")
	}
	p.credentials = slices.Compact(slices.Sorted(slices.Values(caps.Credentials)))
	p.workspace = caps.Workspace
	if p.workspace && m.workspaces == nil {
		return nil, api.Errorf(api.CodeUnavailable, "workspaces are not available on this server")
	}
	if caps.Network != nil {
		p.allowlist = append([]string{}, caps.Network.Allowlist...)
	}
	r := caps.Resources
	if r == nil {
		r = &api.ContainerResources{}
	}
	p.memoryMB = m.cfg.DefaultMemoryMB
	if r.MemoryMB != nil {
		switch v := *r.MemoryMB; {
		case v > m.cfg.MaxMemoryMB:
			return nil, invalid("capabilities.resources.memory_mb", "memory_mb %d is above the server maximum %d (containers.max_memory_mb)", v, m.cfg.MaxMemoryMB)
		case v < minMemory(m.cfg.Runtime):
			why := ""
			if m.cfg.Runtime == "runsc" {
				why = " under gVisor (containers.runtime = \"runsc\": its own processes share the limit)"
			}
			return nil, invalid("capabilities.resources.memory_mb", "memory_mb %d is below the minimum %d%s", v, minMemory(m.cfg.Runtime), why)
		}
		p.memoryMB = *r.MemoryMB
	}
	p.cpuShares = m.cfg.DefaultCPUShares
	if r.CPUShares != nil {
		switch v := *r.CPUShares; {
		case v > m.cfg.MaxCPUShares:
			return nil, invalid("capabilities.resources.cpu_shares", "cpu_shares %d is above the server maximum %d (containers.max_cpu_shares)", v, m.cfg.MaxCPUShares)
		case v < minCPUShares:
			return nil, invalid("capabilities.resources.cpu_shares", "cpu_shares %d is below the minimum %d", v, minCPUShares)
		}
		p.cpuShares = *r.CPUShares
	}
	if r.CPUs != nil {
		switch v := *r.CPUs; {
		case v > m.cfg.MaxCPUs:
			return nil, invalid("capabilities.resources.cpus", "cpus %g is above the server maximum %g (containers.max_cpus)", v, m.cfg.MaxCPUs)
		case v < 0 || v != v:
			return nil, invalid("capabilities.resources.cpus", "cpus must not be negative")
		}
		p.nanoCPUs = int64(*r.CPUs * 1e9)
	}
	p.timeout = m.cfg.DefaultTimeout
	if r.TimeoutMS != nil {
		d, err := m.checkTimeout("capabilities.resources.timeout_ms", *r.TimeoutMS)
		if err != nil {
			return nil, err
		}
		p.timeout = d
	}
	p.logLimit = m.cfg.MaxLogBytes
	if r.MaxOutputBytes != nil {
		v := *r.MaxOutputBytes
		if v < 0 || v > m.cfg.MaxLogBytes {
			return nil, invalid("capabilities.resources.max_output_bytes", "max_output_bytes %d must be between 0 and the server maximum %d (containers.max_log_bytes)", v, m.cfg.MaxLogBytes)
		}
		p.logLimit = v
	}
	return p, nil
}

// Bounds on a spawn's labels.
const (
	maxLabels        = 32
	maxLabelKeyLen   = 63
	maxLabelValueLen = 255
	// reservedLabelPrefix is clawbox's own label namespace on containers.
	reservedLabelPrefix = "clawbox."
)

var labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`)

// CheckLabels validates a spawn's labels: at most 32; keys 1-63 bytes of
// [A-Za-z0-9._/-], starting and ending with a letter or digit and never starting with
// "clawbox." (any case); values at most 255 bytes of valid, printable UTF-8. A
// violation is 400 invalid_request naming the field ("labels" or "labels.<key>").
func CheckLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return invalid("labels", "labels has %d entries, at most %d are allowed", len(labels), maxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if len(k) > maxLabelKeyLen || !labelKeyRE.MatchString(k) {
			return invalid("labels", "label key %q is not valid: 1-%d characters of letters, digits, '.', '_', '/', '-', starting and ending with a letter or digit", truncate(k, 80), maxLabelKeyLen)
		}
		if strings.HasPrefix(strings.ToLower(k), reservedLabelPrefix) {
			return invalid("labels."+k, "label key %q is reserved: keys starting with %q are clawbox's own", k, reservedLabelPrefix)
		}
		if len(v) > maxLabelValueLen {
			return invalid("labels."+k, "label %q: value is longer than %d bytes", k, maxLabelValueLen)
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) {
			return invalid("labels."+k, "label %q: value must be printable UTF-8", k)
		}
	}
	return nil
}

// ParseLabelSelector parses "k=v" selectors (GET /containers?label=k=v, repeatable)
// into the labels a sandbox must all carry. A malformed selector, or one key asked
// for with two values, is 400 invalid_request on field "label".
func ParseLabelSelector(sels []string) (map[string]string, error) {
	if len(sels) == 0 {
		return nil, nil
	}
	if len(sels) > maxLabels {
		return nil, invalid("label", "at most %d label filters are allowed", maxLabels)
	}
	out := make(map[string]string, len(sels))
	for _, s := range sels {
		k, v, ok := strings.Cut(s, "=")
		if !ok || len(k) > maxLabelKeyLen || !labelKeyRE.MatchString(k) || len(v) > maxLabelValueLen {
			return nil, invalid("label", "label filter %q must be key=value with a valid label key", truncate(s, 80))
		}
		if prev, dup := out[k]; dup && prev != v {
			return nil, invalid("label", "label %q is filtered on twice with different values", k)
		}
		out[k] = v
	}
	return out, nil
}

// matchLabels reports whether have carries every label of want.
func matchLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// checkTimeout checks a lifetime asked for in milliseconds against the server maximum.
func (m *Manager) checkTimeout(field string, v int64) (time.Duration, error) {
	if v <= 0 {
		return 0, invalid(field, "timeout_ms must be positive")
	}
	if max := m.cfg.MaxTimeout.Milliseconds(); v > max {
		return 0, invalid(field, "timeout_ms %d is above the server maximum %d (containers.max_timeout_ms)", v, max)
	}
	return time.Duration(v) * time.Millisecond, nil
}

// truncate cuts s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
