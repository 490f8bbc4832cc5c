package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"bridgeport/internal/config"
	"bridgeport/internal/server"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, _, err := config.Parse("bridgeport serve", args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport serve:", err)
		return 2
	}
	log := slog.New(logHandler(stderr, level(cfg.LogLevel)))
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport serve:", err)
		return 1
	}
	// One write, so that whoever waits for the "listening" line has the
	// rest of the message too.
	var msg strings.Builder
	fmt.Fprintf(&msg, "bridgeport %s listening on http://%s (region %s, account %s)\n", Version, srv.Addr(), cfg.Region, cfg.AccountID)
	fmt.Fprintf(&msg, "console: http://%s/console/ (sign in with an access key)\n", srv.Addr())
	if cfg.NATSURL == "" {
		fmt.Fprintf(&msg, "store: embedded NATS JetStream in %s\n", cfg.DataDir)
	} else {
		fmt.Fprintln(&msg, "store: external NATS")
	}
	if srv.NewCredentials {
		c := srv.Credentials()
		// Printed once, on the start that generated them; they are kept in
		// the data directory (mode 0600) and never printed or logged again.
		fmt.Fprintf(&msg, "generated root credentials (shown once; kept in %s/credentials.json):\n", cfg.DataDir)
		fmt.Fprintf(&msg, "  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n  export AWS_DEFAULT_REGION=%s\n",
			c.AccessKeyID, c.SecretAccessKey, cfg.Region)
	}
	_, _ = io.WriteString(stdout, msg.String())
	log.Info("started", "listen", srv.Addr())
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Quotas.ShutdownGraceTime)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// logHandler writes JSON lines, or text when w is a terminal.
func logHandler(w io.Writer, l slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: l}
	if isTerminal(w) {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func level(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}
