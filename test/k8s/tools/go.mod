// Module tools holds the small stdlib-only helpers of the Kubernetes test
// cluster (scripts/k8s): the sandbox "pause" process and the lo-ip CNI plugin.
module github.com/clawbox/clawbox/test/k8s/tools

go 1.24.0
