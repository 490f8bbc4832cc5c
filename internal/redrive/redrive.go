// Package redrive sends dead-lettered events back to their targets. It
// holds the wire types of bridgeport's redrive operations (StartRedrive,
// RedriveMessages, RedriveStatus), which the server implements, and Run,
// the client side of a redrive run, which the command line (`bridgeport
// redrive`) and the console both drive, each through its own Caller.
package redrive

import (
	"context"
	"fmt"
	"sync"
	"time"

	"bridgeport/internal/store"
)

// A redrive run takes the dead-lettered events present in a queue when it
// starts, each at most once: StartRedrive marks where the queue stood, and
// RedriveMessages leaves alone every message stored after the mark, among
// them the events of the run that failed again and were dead-lettered
// again. The final outcome of each event the run queued is recorded under
// the run's id, for RedriveStatus to report.

// StartInput starts a redrive run on a dead-letter queue.
type StartInput struct {
	QueueUrl *string `json:"QueueUrl"`
}

// StartOutput names the run.
type StartOutput struct {
	RunId string `json:"RunId"`
}

// Entry names a dead-letter message its caller has received.
type Entry struct {
	Id            *string `json:"Id"`
	ReceiptHandle *string `json:"ReceiptHandle"`
}

// Input asks to send dead-lettered events back to their targets.
type Input struct {
	QueueUrl *string `json:"QueueUrl"`
	// RunId is StartRedrive's answer.
	RunId   *string `json:"RunId"`
	Entries []Entry `json:"Entries"`
	// Rule (a name or an ARN) and ErrorCode, when set, select the events
	// of that rule, or that failed with that ERROR_CODE; the others are
	// skipped.
	Rule      string `json:"Rule,omitempty"`
	ErrorCode string `json:"ErrorCode,omitempty"`
	// Limit, when above 0, is the most entries this call redrives; the
	// others are skipped.
	Limit int `json:"Limit,omitempty"`
	// DryRun checks each entry without queueing or deleting anything.
	DryRun bool `json:"DryRun"`
}

// Redriven is an entry queued again for delivery (or that would be, in a
// dry run).
type Redriven struct {
	Id        string `json:"Id"`
	EventId   string `json:"EventId"`
	RuleArn   string `json:"RuleArn"`
	TargetId  string `json:"TargetId"`
	TargetArn string `json:"TargetArn"`
}

// Failure is an entry that was not redriven, and stays on the queue.
type Failure struct {
	Id      string `json:"Id"`
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// Output is the answer to RedriveMessages. Entries not redriven stay
// on the queue, invisible until the caller makes them visible again.
type Output struct {
	Successful []Redriven `json:"Successful"`
	Failed     []Failure  `json:"Failed"`
	// Skipped are the ids of entries the filters or the limit left alone.
	Skipped []string `json:"Skipped"`
	// Later are the ids of entries stored after the run started.
	Later []string `json:"Later"`
}

// StatusInput asks for the outcomes of a run's events.
type StatusInput struct {
	RunId *string `json:"RunId"`
	// After is the previous answer's After: only outcomes recorded since
	// are returned.
	After uint64 `json:"After,omitempty"`
}

// StatusOutput holds the final outcomes of events the run queued
// (delivered, or failed again), each under the id of its dead-letter
// message.
type StatusOutput struct {
	Results []store.RedriveResult `json:"Results"`
	After   uint64                `json:"After"`
}

// Caller calls the operations a run needs, as some principal: the SQS API
// (ReceiveMessage, ChangeMessageVisibilityBatch) and bridgeport's own
// (StartRedrive, RedriveMessages, RedriveStatus). in and out are encoded
// and decoded as JSON; an AWS error comes back as an *awsapi.Error.
type Caller interface {
	SQS(ctx context.Context, op string, in, out any) error
	Admin(ctx context.Context, op string, in, out any) error
}

// Options choose what a run redrives.
type Options struct {
	QueueURL string
	// Max, when above 0, is the most events redriven.
	Max int
	// Rate, when above 0, is the most events redriven per second.
	Rate float64
	// Rule (a name or an ARN) and ErrorCode, when set, select the events
	// of that rule, or that failed with that ERROR_CODE.
	Rule, ErrorCode string
	// DryRun checks each message without queueing or deleting anything.
	DryRun bool
	// Wait is how long, after the last redrive, the run waits for the
	// events' outcomes while none comes (0: it does not wait).
	Wait time.Duration
}

// Run is one redrive run. Its methods are safe to call while Do runs.
type Run struct {
	cl   Caller
	opts Options
	// OnRedriven and OnFailed, when set, are told of each event queued
	// again (or that would be) and of each message that could not be.
	OnRedriven func(Redriven)
	OnFailed   func(Failure)

	mu    sync.Mutex
	runID string
	// redriven are the events queued again (or that would be), in order;
	// results their outcomes, by dead-letter message id.
	redriven []Redriven
	results  map[string]store.RedriveResult
	// skipped counts the messages the filters or Max left alone, and
	// failed those that could not be redriven.
	skipped, failed int
	done            bool
	err             error
	// held are the receipt handles of messages received and left on the
	// queue, made visible again at the end; handles those of the messages
	// of the current receive, by id.
	held    []string
	handles map[string]string
	seen    map[string]bool
}

// New returns a run of opts, to start with Do.
func New(cl Caller, opts Options) *Run {
	return &Run{cl: cl, opts: opts, handles: map[string]string{}, results: map[string]store.RedriveResult{}, seen: map[string]bool{}}
}

// Do redrives: it receives the queue's messages with the SQS API and asks
// the server to queue each event again for the target named in its
// message (RedriveMessages), which deletes a message only once its event
// is queued again. Messages left alone are made visible again at the end;
// then it waits for the outcomes of the events it redrove (RedriveStatus).
func (r *Run) Do(ctx context.Context) error {
	err := r.run(ctx)
	if rerr := r.release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = rerr
	}
	if err == nil {
		err = r.await(ctx)
	}
	r.mu.Lock()
	r.done, r.err = true, err
	r.mu.Unlock()
	return err
}

// Outcome is an event a run redrove and, once known, what became of it.
type Outcome struct {
	Redriven
	Result *store.RedriveResult
}

// Progress is where a run stands.
type Progress struct {
	RunID string
	// Redriven counts the events queued again (or that would be), of
	// which Delivered were delivered and FailedAgain were not; Skipped the
	// messages the filters or Max left alone; NotRedriven those that
	// could not be redriven.
	Redriven, Delivered, FailedAgain, Skipped, NotRedriven int
	Done                                                   bool
	Err                                                    error
	// Outcomes are the events redriven that were not delivered: those
	// that failed again, and those whose outcome is not known yet.
	Outcomes []Outcome
}

// Progress returns where the run stands, with at most limit of its
// undelivered events (all when limit is negative).
func (r *Run) Progress(limit int) Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{RunID: r.runID, Redriven: len(r.redriven), Skipped: r.skipped, NotRedriven: r.failed, Done: r.done, Err: r.err}
	for _, s := range r.redriven {
		o := Outcome{Redriven: s}
		if res, ok := r.results[s.Id]; ok {
			if res.Outcome == store.OutcomeDelivered {
				p.Delivered++
				continue
			}
			o.Result = &res
			p.FailedAgain++
		}
		if limit < 0 || len(p.Outcomes) < limit {
			p.Outcomes = append(p.Outcomes, o)
		}
	}
	return p
}

// Done reports whether Do has returned.
func (r *Run) Done() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// receiveSize is how many messages one receive takes: with a rate, no more
// than are redriven within a minute, so that none stays in hand past its
// 90 seconds of invisibility.
func (r *Run) receiveSize() int {
	if r.opts.Rate <= 0 {
		return 10
	}
	return min(10, max(1, int(r.opts.Rate*60)))
}

// count is how many messages the run has dealt with.
func (r *Run) count() (redriven, all int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.redriven), len(r.redriven) + r.skipped + r.failed
}

func (r *Run) run(ctx context.Context) error {
	var start StartOutput
	if err := r.cl.Admin(ctx, "StartRedrive", StartInput{QueueUrl: &r.opts.QueueURL}, &start); err != nil {
		return err
	}
	r.mu.Lock()
	r.runID = start.RunId
	r.mu.Unlock()
	var next time.Time
	size := r.receiveSize()
	for {
		if n, _ := r.count(); r.opts.Max > 0 && n >= r.opts.Max {
			return nil
		}
		var got struct {
			Messages []struct {
				MessageId     string `json:"MessageId"`
				ReceiptHandle string `json:"ReceiptHandle"`
			} `json:"Messages"`
		}
		// Messages stay invisible for 90 seconds, so each is seen once in
		// most runs (and counted once in any). That is also less than the
		// jobs stream's two-minute duplicate window: if the server dies
		// after it queued an event again but before it deleted the
		// message, the message comes back within the window and its next
		// redrive is a duplicate the store drops.
		in := map[string]any{"QueueUrl": r.opts.QueueURL, "MaxNumberOfMessages": size, "WaitTimeSeconds": 2, "VisibilityTimeout": 90}
		if err := r.cl.SQS(ctx, "ReceiveMessage", in, &got); err != nil {
			return err
		}
		var fresh []Entry
		for _, m := range got.Messages {
			if r.seen[m.MessageId] {
				r.held = append(r.held, m.ReceiptHandle)
				continue
			}
			r.seen[m.MessageId] = true
			id, handle := m.MessageId, m.ReceiptHandle
			r.handles[id] = handle
			fresh = append(fresh, Entry{Id: &id, ReceiptHandle: &handle})
		}
		_, before := r.count()
		// Without a rate, one call for the whole receive; with one, a call
		// per message, each redrive followed by its share of a second.
		batches := [][]Entry{fresh}
		if r.opts.Rate > 0 {
			batches = nil
			for _, e := range fresh {
				batches = append(batches, []Entry{e})
			}
		}
		for _, b := range batches {
			if len(b) == 0 {
				continue
			}
			if err := sleepUntil(ctx, next); err != nil {
				return err
			}
			n, err := r.send(ctx, b)
			if err != nil {
				return err
			}
			if n > 0 && r.opts.Rate > 0 {
				next = time.Now().Add(time.Duration(float64(time.Second) / r.opts.Rate))
			}
		}
		// Messages are received in the order they were stored (those made
		// visible again first): a receive that brings nothing new from
		// before the run started, but either is not full or brings
		// messages stored since, found all there was to take.
		_, after := r.count()
		if after == before && (len(fresh) > 0 || len(got.Messages) < size) {
			return nil
		}
	}
}

// sleepUntil waits until t, or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	wait := time.Until(t)
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send asks the server to redrive entries and returns how many it did.
func (r *Run) send(ctx context.Context, entries []Entry) (int, error) {
	in := Input{QueueUrl: &r.opts.QueueURL, RunId: &r.runID, Entries: entries, Rule: r.opts.Rule, ErrorCode: r.opts.ErrorCode, DryRun: r.opts.DryRun}
	if n, _ := r.count(); r.opts.Max > 0 {
		in.Limit = r.opts.Max - n
	}
	var out Output
	if err := r.cl.Admin(ctx, "RedriveMessages", in, &out); err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.redriven = append(r.redriven, out.Successful...)
	r.failed += len(out.Failed)
	r.skipped += len(out.Skipped)
	r.mu.Unlock()
	for _, s := range out.Successful {
		if r.opts.DryRun {
			r.held = append(r.held, r.handles[s.Id])
		}
		if r.OnRedriven != nil {
			r.OnRedriven(s)
		}
	}
	for _, f := range out.Failed {
		r.held = append(r.held, r.handles[f.Id])
		if r.OnFailed != nil {
			r.OnFailed(f)
		}
	}
	for _, id := range append(out.Skipped, out.Later...) {
		r.held = append(r.held, r.handles[id])
	}
	for _, e := range entries {
		delete(r.handles, *e.Id)
	}
	return len(out.Successful), nil
}

// release makes the messages received and left on the queue visible again.
func (r *Run) release(ctx context.Context) error {
	for len(r.held) > 0 {
		n := min(len(r.held), 10)
		var entries []map[string]any
		for i, h := range r.held[:n] {
			entries = append(entries, map[string]any{"Id": fmt.Sprint(i), "ReceiptHandle": h, "VisibilityTimeout": 0})
		}
		r.held = r.held[n:]
		if err := r.cl.SQS(ctx, "ChangeMessageVisibilityBatch", map[string]any{"QueueUrl": r.opts.QueueURL, "Entries": entries}, nil); err != nil {
			return err
		}
	}
	return nil
}

// await waits for the outcomes of the events redriven, until every one is
// known or none has come for Wait: a target that is being retried can
// take up to a day (its retry policy), which the run does not wait for.
func (r *Run) await(ctx context.Context) error {
	r.mu.Lock()
	mine := map[string]bool{}
	for _, s := range r.redriven {
		mine[s.Id] = true
	}
	r.mu.Unlock()
	if r.opts.DryRun || r.opts.Wait <= 0 || len(mine) == 0 {
		return nil
	}
	var after uint64
	progress := time.Now()
	known := 0
	for known < len(mine) && time.Since(progress) < r.opts.Wait {
		var out StatusOutput
		if err := r.cl.Admin(ctx, "RedriveStatus", StatusInput{RunId: &r.runID, After: after}, &out); err != nil {
			return err
		}
		after = out.After
		r.mu.Lock()
		for _, res := range out.Results {
			if _, seen := r.results[res.MessageID]; mine[res.MessageID] && !seen {
				r.results[res.MessageID] = res
				progress = time.Now()
			}
		}
		known = len(r.results)
		r.mu.Unlock()
		if known < len(mine) {
			if err := sleepUntil(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	return nil
}
