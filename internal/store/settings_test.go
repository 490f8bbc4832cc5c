package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"bridgeport/internal/natstest"
)

// TestSettingsRace: nodes that open a new cluster at the same moment with
// different settings: the first to record its settings wins, every other
// is refused with the settings that differ; a node that leaves its
// replicas to the store takes the cluster's.
func TestSettingsRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	ctx := context.Background()
	urls := natstest.Cluster(t, 3)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, Config{URL: urls[i%3], Replicas: 1,
				Settings: []Setting{{Name: "region", Value: fmt.Sprint("region-", i), Fixed: true}}})
		}()
	}
	wg.Wait()
	opened := 0
	for i := range n {
		var serr *SettingsError
		switch {
		case errs[i] == nil:
			opened++
			defer stores[i].Close()
		case errors.As(errs[i], &serr):
			if len(serr.Mismatches) != 1 || serr.Mismatches[0].Name != "region" || serr.Mismatches[0].Value != fmt.Sprint("region-", i) {
				t.Errorf("node %d refused for %+v", i, serr.Mismatches)
			}
		default:
			t.Fatalf("node %d: %v", i, errs[i])
		}
	}
	if opened != 1 {
		t.Fatalf("%d of %d nodes with different settings opened the cluster, want 1", opened, n)
	}
	var winner string
	for i := range n {
		if errs[i] == nil {
			winner = fmt.Sprint("region-", i)
		}
	}
	late, err := Open(ctx, Config{URL: urls[0], Settings: []Setting{{Name: "region", Value: winner, Fixed: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if late.cfg.Replicas != 1 {
		t.Errorf("a node that left its replicas to the store has %d, want the cluster's 1 (its own default is 3)", late.cfg.Replicas)
	}
}
