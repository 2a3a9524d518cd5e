//go:build !wasip1

package toolkit

import "embed"

// Source is this package's own source code (without tests). `clawbox new-tool`
// copies it into a new tool's module, so the tool builds offline with nothing but a
// Go toolchain. It is not compiled into tools (wasip1 builds leave it out).
//
//go:embed toolkit.go abi_wasip1.go abi_other.go
var Source embed.FS
