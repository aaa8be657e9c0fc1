// Command minipay is the payments and monetization engine for mini-apps:
// its HTTP server, migrations, settlement runs, exports, benchmarks, and the
// developer's tools (dev, listen, trigger). "minipay help" lists them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(os.Getenv)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "minipay:", err)
	if isUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}
