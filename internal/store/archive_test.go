package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestArchiveSizeBytes: an archive counts its events and exactly the bytes
// of their envelopes, lists the hours that hold events, reads an hour from
// a sequence up to a mark, ignores an event written twice (a routing
// repeated after a crash), and is gone once deleted.
func TestArchiveSizeBytes(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	const id = "0123456789abcdef"
	if err := s.CreateArchive(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var writes []Archived
	var bytes int64
	for i := range 30 {
		data := fmt.Appendf(nil, `{"id":"e%d","detail":{"pad":"%0*d"}}`, i, i*7, 0)
		writes = append(writes, Archived{Archive: id, EventID: fmt.Sprint("e", i), Time: base.Add(time.Duration(i%3) * time.Hour), Data: data})
		bytes += int64(len(data))
	}
	if err := s.AppendRouted(ctx, nil, writes, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRouted(ctx, nil, writes[:5], false); err != nil { // again, after a "crash"
		t.Fatal(err)
	}
	st, err := s.ArchiveStats(ctx, id)
	if err != nil || st.Events != 30 || st.Bytes != bytes {
		t.Fatalf("ArchiveStats = %+v, %v; want 30 events, %d bytes", st, err, bytes)
	}
	h0 := ArchiveHour(base)
	hours, err := s.ArchiveHours(ctx, id, h0+1, h0+5)
	if err != nil || !slices.Equal(hours, []int64{h0 + 1, h0 + 2}) {
		t.Fatalf("ArchiveHours = %v, %v", hours, err)
	}
	mark, err := s.ArchiveMark(ctx, id)
	if err != nil || mark != 30 {
		t.Fatalf("ArchiveMark = %d, %v", mark, err)
	}
	var seqs []uint64
	if err := s.ReadArchiveHour(ctx, id, h0+1, 5, 20, func(seq uint64, data []byte) error {
		seqs = append(seqs, seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Events 1, 4, 7, ... are at hour h0+1, at sequences 2, 5, 8, ...
	if !slices.Equal(seqs, []uint64{8, 11, 14, 17, 20}) {
		t.Errorf("ReadArchiveHour read %v", seqs)
	}
	if err := s.DeleteArchive(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ArchiveStats(ctx, id); !errors.Is(err, ErrNoArchive) {
		t.Errorf("stats of a deleted archive: %v", err)
	}
	if err := s.ReadArchiveHour(ctx, id, h0, 0, 30, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrNoArchive) {
		t.Errorf("read of a deleted archive: %v", err)
	}
}

// TestArchiveRetention: events older than the archive's retention are
// deleted by the store; a retention of 0, set later, keeps the rest.
func TestArchiveRetention(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	const id = "fedcba9876543210"
	if err := s.CreateArchive(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRouted(ctx, nil, []Archived{{Archive: id, EventID: "old", Time: time.Now(), Data: []byte(`{}`)}}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event past its retention deleted", func() bool {
		st, err := s.ArchiveStats(ctx, id)
		return err == nil && st.Events == 0
	})
	if err := s.CreateArchive(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRouted(ctx, nil, []Archived{{Archive: id, EventID: "kept", Time: time.Now(), Data: []byte(`{}`)}}, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // longer than the old retention
	if st, err := s.ArchiveStats(ctx, id); err != nil || st.Events != 1 {
		t.Errorf("with retention 0: %+v, %v", st, err)
	}
}
