package api

// PolicyCheckRequest is the body of POST /policy/check: what would the gateway decide
// for this request? Name a container sandbox or a tool, or neither for the server's
// container policy (what a new spawn gets).
type PolicyCheckRequest struct {
	ContainerID string `json:"container_id,omitempty"`
	Tool        string `json:"tool,omitempty"`
	URL         string `json:"url"`
	Method      string `json:"method,omitempty"` // default GET
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
}
