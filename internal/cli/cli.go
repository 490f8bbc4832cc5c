// Package cli is bridgeport's command line: one file per subcommand.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Main runs the command line with args (without the program name) and
// returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr, os.Getenv)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr, os.Getenv)
	case "diagnose":
		return diagnose(ctx, args[1:], stdout, stderr, os.Getenv)
	case "events":
		return events(ctx, args[1:], stdout, stderr, os.Getenv)
	case "redrive":
		return redrive(ctx, args[1:], stdout, stderr, os.Getenv)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr, os.Getenv)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "bridgeport", Version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "bridgeport: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `bridgeport: a self-hosted event router that speaks Amazon EventBridge's API

Usage:
  bridgeport serve [flags]   start the server (bridgeport serve -h lists the flags)
  bridgeport redrive --queue-url URL [--max N] [--rate R] [--rule NAME] [--error-code CODE] [--wait 30s] [--dry-run]
                             send dead-lettered events back to their targets, and report their outcomes
  bridgeport bench [flags] [ingest] [latency] [delivery] [backlog]
                             measure a server (one it starts, or --endpoint); bench -h lists the flags
  bridgeport diagnose --rule NAME [--event-bus NAME] [--target ID] [--probe] [--output json]
                             find why a rule does not reach its targets, and how to fix it
  bridgeport events trace EVENT-ID
                             every attempt to deliver an event, with its outcome
  bridgeport events attempts --rule NAME [--target ID] [--failed] [--since 24h]
                             the recent attempts of a rule's targets
  bridgeport migrate --data-dir DIR --nats-url URLS
                             copy a stopped node's embedded store into a new NATS cluster
  bridgeport version         print the version
`)
}
