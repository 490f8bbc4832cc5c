package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"bridgeport/internal/store"
)

// migrate copies a stopped node's embedded store into a NATS cluster that
// bridgeport has not used yet, for moving from one node to several.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("bridgeport migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := getenv("BRIDGEPORT_DATA_DIR")
	if dir == "" {
		dir = "./bridgeport-data"
	}
	dataDir := fs.String("data-dir", dir, "the data directory of the embedded store to copy from (the node must be stopped)")
	natsURL := fs.String("nats-url", getenv("BRIDGEPORT_NATS_URL"), "the NATS cluster to copy into (comma-separated URLs)")
	replicas := fs.Int("replicas", 0, "replicas of the streams and buckets created in the cluster (default 3 on a cluster, else 1)")
	replace := fs.Bool("replace", false, "first remove everything bridgeport keeps in the cluster (to run a migration that failed again; stop every node first)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bridgeport migrate --data-dir DIR --nats-url URLS [--replicas N] [--replace]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *natsURL == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	from, err := store.Open(ctx, store.Config{DataDir: *dataDir})
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport migrate: open the embedded store:", err)
		return 1
	}
	defer from.Close()
	to, err := store.Open(ctx, store.Config{URL: *natsURL, Replicas: *replicas})
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport migrate: open the cluster:", err)
		return 1
	}
	defer to.Close()
	st, err := store.Migrate(ctx, from, to, store.MigrateOptions{Replace: *replace,
		Progress: func(step string) { fmt.Fprintln(stderr, step) }})
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport migrate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "copied into %s: %d configuration records, %d events not yet routed, %d deliveries due, %d deliveries delayed, %d queue messages, %d attempt records, %d events set aside, %d deliveries parked, %d deliveries of replayed events, %d archived events\n",
		store.RedactURLs(*natsURL), st.Records, st.Events, st.Jobs, st.Delayed, st.QueueMessages, st.Attempts, st.Aside, st.Parked, st.Replayed, st.Archived)
	return 0
}
