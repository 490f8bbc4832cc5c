package cli

// Version is bridgeport's version, set at build time with
// -ldflags "-X bridgeport/internal/cli.Version=...".
var Version = "dev"
