package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Redrive runs: `bridgeport redrive` sends dead-lettered events back to
// their targets. A run is bounded by a mark, the queues stream's last
// sequence when it started: it takes only messages at or below the mark,
// so an event that fails again and is dead-lettered again (a new message,
// above the mark) is not taken again by the same run. The final outcome of
// each job a run queued is recorded in a bucket under the run's id, for
// the run to report.
const (
	redrivesBucket = "bridgeport_redrives"
	// redrivesAge is how long outcomes are kept: a run waits for them
	// minutes at most; a day leaves room to look later.
	redrivesAge = 24 * time.Hour
)

func (s *Store) ensureRedrives(ctx context.Context) error {
	var err error
	s.redrives, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      redrivesBucket,
		Description: "final outcomes of the jobs redrive runs queued",
		History:     1,
		TTL:         redrivesAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("redrives bucket: %w", err)
	}
	return nil
}

// QueueMark returns the sequence of the last message stored in any queue:
// every message stored later has a higher one.
func (s *Store) QueueMark(ctx context.Context) (uint64, error) {
	info, err := s.queues.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queues stream: %w", err)
	}
	return info.State.LastSeq, nil
}

// RedriveResult is the final outcome of a redriven job.
type RedriveResult struct {
	// MessageID is the dead-letter message the job came from.
	MessageID string `json:"messageId"`
	EventID   string `json:"eventId"`
	RuleArn   string `json:"ruleArn"`
	TargetArn string `json:"targetArn,omitempty"`
	// Outcome is OutcomeDelivered, or what became of an event that failed
	// again: OutcomeDeadLettered, OutcomeDLQFailed or OutcomeDropped.
	Outcome string `json:"outcome"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// RecordRedrive records the final outcome of a job of redrive run run.
// Recording it again (a job run again after a crash) replaces it.
func (s *Store) RecordRedrive(ctx context.Context, run string, r RedriveResult) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := s.redrives.Put(ctx, Token(run)+"."+Token(r.MessageID), data); err != nil {
		return fmt.Errorf("record redrive outcome: %w", err)
	}
	return nil
}

// RedriveResults returns the outcomes of run recorded after revision after
// (0: all), and the revision to ask after next time.
func (s *Store) RedriveResults(ctx context.Context, run string, after uint64) ([]RedriveResult, uint64, error) {
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if after > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(after+1))
	}
	w, err := s.redrives.Watch(ctx, Token(run)+".>", opts...)
	if err != nil {
		return nil, after, fmt.Errorf("redrive outcomes: %w", err)
	}
	defer w.Stop()
	var out []RedriveResult
	for {
		select {
		case <-ctx.Done():
			return out, after, ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return out, after, nil
			}
			after = max(after, e.Revision())
			var r RedriveResult
			if json.Unmarshal(e.Value(), &r) == nil {
				out = append(out, r)
			}
		}
	}
}
