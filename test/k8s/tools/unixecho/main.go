// Command unixecho checks that a Unix socket is reachable, for the test
// cluster's smoke test (scripts/k8s/smoke.sh), whose busybox nc has no -U.
//
//	unixecho -listen PATH   serve PATH (mode 0666): answer each line with "echo: <line>"
//	unixecho -dial PATH MSG connect to PATH, send MSG, print the reply
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "", "serve this socket path")
	dial := flag.String("dial", "", "connect to this socket path")
	flag.Parse()
	switch {
	case *listen != "":
		_ = os.Remove(*listen)
		l, err := net.Listen("unix", *listen)
		if err != nil {
			fail(err)
		}
		if err := os.Chmod(*listen, 0o666); err != nil {
			fail(err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				fail(err)
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				line = strings.TrimSpace(line)
				fmt.Printf("unixecho: got %q\n", line)
				fmt.Fprintf(c, "echo: %s\n", line)
			}(c)
		}
	case *dial != "":
		c, err := net.DialTimeout("unix", *dial, 5*time.Second)
		if err != nil {
			fail(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "%s\n", strings.Join(flag.Args(), " "))
		reply, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fail(err)
		}
		fmt.Printf("unixecho: %s reply=%q\n", *dial, strings.TrimSpace(reply))
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "unixecho:", err)
	os.Exit(1)
}
