// Command lo-ip is a CNI plugin that creates no interface at all. It only
// reports an address (default 127.0.0.1/8, the Pod's own loopback) so that
// containerd's CRI, which insists on an IP for "eth0", accepts the sandbox.
// The Pod ends up with "lo" only (containerd runs the stock "loopback"
// plugin itself).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Address    string `json:"address"`
	}
	_ = json.Unmarshal(in, &conf)
	if conf.CNIVersion == "" {
		conf.CNIVersion = "1.0.0"
	}
	switch cmd := os.Getenv("CNI_COMMAND"); cmd {
	case "ADD":
		addr := conf.Address
		if addr == "" {
			addr = "127.0.0.1/8"
		}
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"cniVersion": conf.CNIVersion,
			"ips":        []map[string]any{{"address": addr}},
		})
	case "DEL", "CHECK", "GC", "STATUS":
		// nothing was created, nothing to remove or check
	case "VERSION":
		fmt.Print(`{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}`)
	default:
		fmt.Printf(`{"cniVersion":"1.0.0","code":4,"msg":"unsupported CNI_COMMAND %q"}`, cmd)
		os.Exit(1)
	}
}
