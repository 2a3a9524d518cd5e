package api

// PolicyCheckRequest is the body of POST /policy/check: what would the gateway decide
// for this request? Name a container sandbox or a tool, or neither for the server's
// container policy (what a new spawn gets).
type PolicyCheckRequest struct {
	ContainerID string `json:"container_id,omitempty"`
	Tool        string `json:"tool,omitempty"`
	URL         string `json:"url"`
	Method      string `json:"method,omitempty"` // default GET
	// Door is the way the request would come: "proxy" (POST /proxy, the default),
	// "forward" (an absolute-form proxy request) or "connect" (a request inside a
	// CONNECT tunnel to the URL's host and port: the tunnel is decided first). A
	// tool has only "proxy".
	Door string `json:"door,omitempty"`
}

// PolicyCheckResponse says what the gateway would decide, and which rule decided.
// Nothing is sent.
type PolicyCheckResponse struct {
	Allowed bool `json:"allowed"`
	// Rule is the rule that decided, in canonical form ("" when no rule matched).
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason"`
	// Policy says whose policy was checked: "container <id>", "tool <name>" or "server".
	Policy string `json:"policy"`
	// Rules is the effective rule list that was checked.
	Rules []string `json:"rules"`
	// Door is the door that was checked ("proxy", "forward" or "connect").
	Door string `json:"door"`
	// Tunnel, for door "connect" when the tunnel would open, says what happens to
	// it: "intercept" (TLS terminated with the sandbox's CA, each request decided,
	// scanned and injected as through POST /proxy) or "passthrough" (spliced to the
	// upstream uninspected, by a pass-through rule).
	Tunnel string `json:"tunnel,omitempty"`
}

// Tunnel modes of PolicyCheckResponse.
const (
	TunnelIntercept   = "intercept"
	TunnelPassthrough = "passthrough"
)
