// Command bridgeport is a self-hosted event router that speaks Amazon
// EventBridge's API. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"bridgeport/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
