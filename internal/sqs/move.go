package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// Message move tasks (StartMessageMoveTask) move the messages of a
// dead-letter queue back to the queues they came from, or to another
// queue. A task is a record in the configuration bucket; one node at a
// time runs it, under a lease it claims by compare-and-set and renews at
// each checkpoint, so a task whose node dies goes on elsewhere (or on the
// same node restarted) within moveLease. Each message is stored in its
// destination, under a dedupe id made of its message id, before it is
// deleted from the dead-letter queue: a move cut short by a crash leaves
// the message in the dead-letter queue, invisible for moveVisibility,
// and moving it again stores it once, inside the queue's five-minute
// duplicate window.
const (
	moveLease      = 15 * time.Second
	moveCheckpoint = time.Second
	moveVisibility = 30 * time.Second
	// moveIdle is how long a task waits for messages in flight in the
	// dead-letter queue (received by someone, or by a node that died
	// moving them) to come back before it calls itself done.
	moveIdle = 2 * time.Minute
	// moveKeep is how long finished tasks are listed; at most moveKept
	// per source queue.
	moveKeep = 14 * 24 * time.Hour
	moveKept = 10
	// metaSource is the message meta that names the queue a message was
	// dead-lettered from (the DeadLetterQueueSourceArn attribute).
	metaSource = "Bp-Dlq-Source"
)

// Move task states.
const (
	MoveRunning    = "RUNNING"
	MoveCompleted  = "COMPLETED"
	MoveCancelling = "CANCELLING"
	MoveCancelled  = "CANCELLED"
	MoveFailed     = "FAILED"
)

// moveTask is a message move task's record.
type moveTask struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"` // the queue's name
	SourceArn   string    `json:"sourceArn"`
	Destination *string   `json:"destination,omitempty"` // ARN
	Rate        *int      `json:"rate,omitempty"`
	Status      string    `json:"status"`
	Moved       int64     `json:"moved"`
	ToMove      *int64    `json:"toMove,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Failure     string    `json:"failure,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Lease       time.Time `json:"lease,omitzero"`
}

func (t *moveTask) active() bool { return t.Status == MoveRunning || t.Status == MoveCancelling }

const (
	movePrefix     = "sqsmove."
	moveLockPrefix = "sqsmovelock."
)

func moveKey(source, id string) string { return movePrefix + store.Token(source) + "." + id }

// moveLockKey names the record that holds a source queue's active task:
// created with the task, so that two starts cannot both succeed.
func moveLockKey(source string) string { return moveLockPrefix + store.Token(source) }

// taskHandle is a task's handle, as SQS makes it: base64 of JSON naming
// the task and its source queue.
func taskHandle(t *moveTask) string {
	b, _ := json.Marshal(struct {
		TaskID    string `json:"taskId"`
		SourceArn string `json:"sourceArn"`
	}{t.ID, t.SourceArn})
	return base64.StdEncoding.EncodeToString(b)
}

func errSourceNotFound() *awsapi.Error {
	return &awsapi.Error{Code: "ResourceNotFoundException", QueryCode: "ResourceNotFoundException", Status: 404,
		Message: "The resource that you specified for the SourceArn parameter doesn't exist."}
}

func (s *Service) startMessageMoveTask(ctx context.Context, body []byte) (any, error) {
	var in struct {
		SourceArn                    *string `json:"SourceArn"`
		DestinationArn               *string `json:"DestinationArn"`
		MaxNumberOfMessagesPerSecond *int    `json:"MaxNumberOfMessagesPerSecond"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.SourceArn == nil || *in.SourceArn == "" {
		return nil, errMissing("SourceArn")
	}
	if r := in.MaxNumberOfMessagesPerSecond; r != nil && (*r < 1 || *r > 500) {
		// UNVERIFIED wording.
		return nil, errInvalidParameter("Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: You must enter a number that's between 1 and 500.")
	}
	src, err := s.queueByArn(ctx, *in.SourceArn)
	if err != nil {
		return nil, errSourceNotFound()
	}
	sources, err := s.deadLetterSources(ctx, *in.SourceArn)
	if err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, errInvalidParameter("Source queue must be configured as a Dead Letter Queue.")
	}
	if in.DestinationArn != nil {
		dst, err := s.queueByArn(ctx, *in.DestinationArn)
		if err != nil {
			return nil, &awsapi.Error{Code: "ResourceNotFoundException", QueryCode: "ResourceNotFoundException", Status: 404,
				Message: "The resource that you specified for the DestinationArn parameter doesn't exist."}
		}
		if dst.FIFO() != src.FIFO() {
			// UNVERIFIED wording.
			return nil, errInvalidParameter("The source queue and destination queue must be of the same queue type.")
		}
	}
	t := moveTask{ID: newUUID(), Source: src.Name, SourceArn: *in.SourceArn, Destination: in.DestinationArn,
		Rate: in.MaxNumberOfMessagesPerSecond, Status: MoveRunning, Started: time.Now().UTC()}
	if err := s.lockMove(ctx, &t); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(t)
	if _, err := s.st.Create(ctx, moveKey(t.Source, t.ID), data); err != nil {
		_ = s.unlockMove(ctx, t.Source, t.ID)
		return nil, err
	}
	s.wakeMoves()
	return struct {
		TaskHandle string `json:"TaskHandle"`
	}{taskHandle(&t)}, nil
}

var errTaskRunning = errInvalidParameter("There is already a task running. Only one active task is allowed for a source queue arn at a given time.")

// lockMove records t as its source queue's active task, unless another
// active task holds the lock.
func (s *Service) lockMove(ctx context.Context, t *moveTask) error {
	key := moveLockKey(t.Source)
	lock, _ := json.Marshal(moveLock{ID: t.ID, At: t.Started})
	_, err := s.st.Create(ctx, key, lock)
	if !errors.Is(err, store.ErrExists) {
		return err
	}
	e, err := s.st.Get(ctx, key)
	if err != nil {
		return err
	}
	var held moveLock
	_ = json.Unmarshal(e.Value, &held)
	old, _, err := s.getMove(ctx, t.Source, held.ID)
	switch {
	case err == nil && old.active():
		return errTaskRunning
	case errors.Is(err, store.ErrNotFound) && time.Since(held.At) < time.Minute:
		// A start that has locked and not yet written its task.
		return errTaskRunning
	}
	// The lock of a task that ended without removing it (its node died
	// between the two writes), or of a start that never wrote its task,
	// is taken over.
	if _, err := s.st.Update(ctx, key, lock, e.Revision); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errTaskRunning
		}
		return err
	}
	return nil
}

// moveLock is the value of a source queue's lock.
type moveLock struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

func (s *Service) unlockMove(ctx context.Context, source, id string) error {
	e, err := s.st.Get(ctx, moveLockKey(source))
	if err != nil {
		return nil
	}
	var held moveLock
	if json.Unmarshal(e.Value, &held) != nil || held.ID != id {
		return nil
	}
	_, err = s.st.Delete(ctx, moveLockKey(source), e.Revision)
	return err
}

func (s *Service) getMove(ctx context.Context, source, id string) (moveTask, uint64, error) {
	e, err := s.st.Get(ctx, moveKey(source, id))
	if err != nil {
		return moveTask{}, 0, err
	}
	var t moveTask
	if err := json.Unmarshal(e.Value, &t); err != nil {
		return moveTask{}, 0, err
	}
	return t, e.Revision, nil
}

// moves returns the tasks of one source queue ("": of all), newest
// first, with their revisions.
func (s *Service) moves(ctx context.Context, source string) ([]moveTask, []uint64, error) {
	prefix := movePrefix
	if source != "" {
		prefix += store.Token(source) + "."
	}
	entries, err := s.st.List(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	type rec struct {
		t   moveTask
		rev uint64
	}
	var rs []rec
	for _, e := range entries {
		var t moveTask
		if json.Unmarshal(e.Value, &t) == nil {
			rs = append(rs, rec{t, e.Revision})
		}
	}
	slices.SortFunc(rs, func(a, b rec) int { return b.t.Started.Compare(a.t.Started) })
	ts, revs := make([]moveTask, len(rs)), make([]uint64, len(rs))
	for i, r := range rs {
		ts[i], revs[i] = r.t, r.rev
	}
	return ts, revs, nil
}

func (s *Service) listMessageMoveTasks(ctx context.Context, body []byte) (any, error) {
	var in struct {
		SourceArn  *string `json:"SourceArn"`
		MaxResults *int    `json:"MaxResults"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.SourceArn == nil || *in.SourceArn == "" {
		return nil, errMissing("SourceArn")
	}
	limit := 1
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10 {
			// UNVERIFIED wording.
			return nil, errParameterValue(*in.MaxResults, "MaxResults", "You must enter a number that's between 1 and 10.")
		}
		limit = *in.MaxResults
	}
	src, err := s.queueByArn(ctx, *in.SourceArn)
	if err != nil {
		return nil, errSourceNotFound()
	}
	ts, _, err := s.moves(ctx, src.Name)
	if err != nil {
		return nil, err
	}
	type entry struct {
		TaskHandle                        string  `json:"TaskHandle,omitempty"`
		Status                            string  `json:"Status"`
		SourceArn                         string  `json:"SourceArn"`
		DestinationArn                    *string `json:"DestinationArn,omitempty"`
		MaxNumberOfMessagesPerSecond      *int    `json:"MaxNumberOfMessagesPerSecond,omitempty"`
		ApproximateNumberOfMessagesMoved  int64   `json:"ApproximateNumberOfMessagesMoved"`
		ApproximateNumberOfMessagesToMove *int64  `json:"ApproximateNumberOfMessagesToMove,omitempty"`
		FailureReason                     string  `json:"FailureReason,omitempty"`
		StartedTimestamp                  int64   `json:"StartedTimestamp"`
	}
	out := struct {
		Results []entry `json:"Results"`
	}{Results: []entry{}}
	for _, t := range ts[:min(limit, len(ts))] {
		e := entry{Status: t.Status, SourceArn: t.SourceArn, DestinationArn: t.Destination, MaxNumberOfMessagesPerSecond: t.Rate,
			ApproximateNumberOfMessagesMoved: t.Moved, ApproximateNumberOfMessagesToMove: t.ToMove, StartedTimestamp: t.Started.UnixMilli()}
		if t.Status == MoveRunning {
			e.TaskHandle = taskHandle(&t)
		}
		if t.Status == MoveFailed {
			e.FailureReason = t.Failure
		}
		out.Results = append(out.Results, e)
	}
	return out, nil
}

func (s *Service) cancelMessageMoveTask(ctx context.Context, body []byte) (any, error) {
	var in struct {
		TaskHandle *string `json:"TaskHandle"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.TaskHandle == nil || *in.TaskHandle == "" {
		return nil, errMissing("TaskHandle")
	}
	var h struct {
		TaskID    string `json:"taskId"`
		SourceArn string `json:"sourceArn"`
	}
	raw, err := base64.StdEncoding.DecodeString(*in.TaskHandle)
	if err != nil || json.Unmarshal(raw, &h) != nil || h.TaskID == "" || h.SourceArn == "" {
		return nil, errInvalidParameter("Value for parameter TaskHandle is invalid.")
	}
	src, err := s.queueByArn(ctx, h.SourceArn)
	if err != nil {
		return nil, errSourceNotFound()
	}
	for range 10 {
		t, rev, err := s.getMove(ctx, src.Name, h.TaskID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.SourceArn != h.SourceArn) {
			return nil, &awsapi.Error{Code: "ResourceNotFoundException", QueryCode: "ResourceNotFoundException", Status: 404, Message: "Task does not exist."}
		}
		if err != nil {
			return nil, err
		}
		if t.Status != MoveRunning {
			// UNVERIFIED: SQS documents that only a RUNNING task can be
			// cancelled, not the error.
			return nil, sqsError("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation",
				"Only a message movement task in RUNNING status can be cancelled; this one is %s.", t.Status)
		}
		t.Status = MoveCancelling
		data, _ := json.Marshal(t)
		if _, err := s.st.Update(ctx, moveKey(t.Source, t.ID), data, rev); errors.Is(err, store.ErrConflict) {
			continue // its runner wrote progress meanwhile
		} else if err != nil {
			return nil, err
		}
		s.wakeMoves()
		return struct {
			ApproximateNumberOfMessagesMoved int64 `json:"ApproximateNumberOfMessagesMoved"`
		}{t.Moved}, nil
	}
	return nil, errors.New("move task record keeps changing")
}

// queueByArn returns the queue an ARN of this account and region names.
func (s *Service) queueByArn(ctx context.Context, arn string) (*Queue, error) {
	name, ok := s.NameFromArn(arn)
	if !ok {
		return nil, errNoQueue()
	}
	q, _, err := s.Get(ctx, name)
	return q, err
}

// deadLetterSources returns the names of the queues whose RedrivePolicy
// names the queue arn as their dead-letter queue, sorted.
func (s *Service) deadLetterSources(ctx context.Context, arn string) ([]string, error) {
	queues, err := s.allQueues(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, q := range queues {
		if target, _, ok := parseRedrive(q.Attrs["RedrivePolicy"]); ok && target == arn {
			names = append(names, q.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (s *Service) wakeMoves() {
	select {
	case s.moveWake <- struct{}{}:
	default:
	}
}

// Start runs the message move tasks this node claims, until Stop.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.runMoves(ctx)
	}()
}

// Stop stops the tasks this node runs (another node, or this one
// restarted, goes on with them) and waits for them.
func (s *Service) Stop() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// runMoves claims tasks whose lease has run out (new ones, or their node
// died) every second and when a task starts, and prunes finished ones.
func (s *Service) runMoves(ctx context.Context) {
	var mu sync.Mutex
	running := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.moveWake:
		}
		ts, revs, err := s.moves(ctx, "")
		if err != nil {
			continue
		}
		now := time.Now()
		kept := map[string]int{}
		for i, t := range ts {
			mu.Lock()
			mine := running[t.ID]
			mu.Unlock()
			switch {
			case mine:
				continue
			case !t.active():
				if kept[t.Source]++; kept[t.Source] > moveKept || now.Sub(t.Ended) > moveKeep {
					_, _ = s.st.Delete(ctx, moveKey(t.Source, t.ID), revs[i])
				}
				continue
			case t.Owner != "" && now.Before(t.Lease):
				continue
			}
			t.Owner, t.Lease = s.node, now.Add(moveLease)
			data, _ := json.Marshal(t)
			rev, err := s.st.Update(ctx, moveKey(t.Source, t.ID), data, revs[i])
			if err != nil {
				continue // another node claimed it first
			}
			mu.Lock()
			running[t.ID] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := &moveRun{s: s, t: t, rev: rev}
				r.run(ctx)
				mu.Lock()
				delete(running, t.ID)
				mu.Unlock()
			}()
		}
	}
}

// moveRun is one node's run of a task.
type moveRun struct {
	s     *Service
	t     moveTask
	rev   uint64
	saved time.Time
}

// errMoveOver stops a run whose record changed hands.
var errMoveOver = errors.New("move task no longer run by this node")

func (r *moveRun) run(ctx context.Context) {
	err := r.move(ctx)
	switch {
	case ctx.Err() != nil:
		// Stopping: the lease runs out and a node goes on from the
		// messages still in the dead-letter queue.
		return
	case errors.Is(err, errMoveOver):
		return
	case err != nil:
		r.s.log.Warn("message move task stops", "task", r.t.ID, "source", r.t.Source, "error", err)
		// Its progress since the last checkpoint is saved if it can be,
		// so that the run that takes over counts on from there.
		_ = r.checkpoint(ctx)
	}
}

// move moves messages until the task is done, cancelled or failed.
func (r *moveRun) move(ctx context.Context) error {
	s, t := r.s, &r.t
	if t.Status == MoveCancelling {
		return r.finish(ctx, MoveCancelled, "")
	}
	src, _, err := s.Get(ctx, t.Source)
	if err != nil {
		var aerr *awsapi.Error
		if errors.As(err, &aerr) {
			return r.finish(ctx, MoveFailed, "AWS.SimpleQueueService.NonExistentQueue")
		}
		return err
	}
	if t.ToMove == nil {
		visible, _, _, err := s.st.QueueCounts(ctx, src.ID)
		if err != nil {
			return err
		}
		n := int64(visible)
		t.ToMove = &n
		if err := r.checkpoint(ctx); err != nil {
			return err
		}
	}
	start, startMoved := time.Now(), t.Moved
	idleSince := time.Now()
	for {
		if time.Since(r.saved) >= moveCheckpoint {
			if err := r.checkpoint(ctx); err != nil {
				return err
			}
			if t.Status == MoveCancelling {
				return r.finish(ctx, MoveCancelled, "")
			}
		}
		if t.Moved >= *t.ToMove {
			return r.finish(ctx, MoveCompleted, "")
		}
		n := int(min(10, *t.ToMove-t.Moved))
		if t.Rate != nil {
			// Paced: message k of this run goes at start + k/rate.
			due := start.Add(time.Duration(float64(t.Moved-startMoved) / float64(*t.Rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(min(wait, moveCheckpoint)):
				}
				continue
			}
			n = min(n, *t.Rate)
		}
		got, err := s.st.Receive(ctx, src.ID, store.ReceiveOptions{Max: n, Visibility: moveVisibility, Retention: src.seconds("MessageRetentionPeriod")})
		if err != nil && len(got) == 0 {
			return err
		}
		if len(got) == 0 {
			// Nothing received: done, unless messages may come back for a
			// while yet: in flight (a node that died moving them), or
			// counted as visible yet not received (a node that died in the
			// middle of receiving them: they come back when the queue's
			// consumer's lease on them ends).
			visible, inFlight, _, err := s.st.QueueCounts(ctx, src.ID)
			if err != nil {
				return err
			}
			if visible+inFlight == 0 || time.Since(idleSince) > moveIdle {
				return r.finish(ctx, MoveCompleted, "")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		idleSince = time.Now()
		for i, m := range got {
			if reason, err := r.moveOne(ctx, src, m); err != nil || reason != "" {
				for _, back := range got[i:] {
					_ = s.st.ChangeVisibility(ctx, src.ID, back.Handle, 0)
				}
				if reason != "" {
					return r.finish(ctx, MoveFailed, reason)
				}
				return err
			}
			t.Moved++
		}
	}
}

// moveOne stores one message in its destination, then deletes it from the
// dead-letter queue. A reason is the task's failure.
func (r *moveRun) moveOne(ctx context.Context, src *Queue, m store.Received) (reason string, err error) {
	s := r.s
	dest := m.Meta[metaSource]
	if r.t.Destination != nil {
		dest = *r.t.Destination
	}
	if dest == "" {
		// UNVERIFIED: what SQS does with a message that was not
		// dead-lettered by a queue (sent to the queue directly).
		return "CouldNotDetermineMessageSource", nil
	}
	dq, err := s.queueByArn(ctx, dest)
	if err != nil {
		var aerr *awsapi.Error
		if errors.As(err, &aerr) {
			return "AWS.SimpleQueueService.NonExistentQueue", nil
		}
		return "", err
	}
	meta := map[string]string{}
	for k, v := range m.Meta {
		if strings.HasPrefix(k, "Bp-Dl-") {
			meta[k] = v
		}
	}
	// A new message, as SQS's redrive makes one: a new id, and the
	// destination's retention from now.
	if _, _, err := s.st.SendToQueue(ctx, dq.ID, store.QueueMessage{ID: newUUID(), DedupeID: "redrive/" + m.ID, Data: m.Data,
		Retention: dq.seconds("MessageRetentionPeriod"), Meta: meta}); err != nil {
		return "", err
	}
	if err := s.st.DeleteReceived(ctx, src.ID, m.Handle); err != nil && !errors.Is(err, store.ErrStaleReceipt) {
		return "", err
	}
	return "", nil
}

// checkpoint writes the task's progress and renews its lease; it fails
// with errMoveOver when the record is no longer this node's to write, and
// picks up a cancellation.
func (r *moveRun) checkpoint(ctx context.Context) error {
	for range 10 {
		r.t.Lease = time.Now().Add(moveLease)
		data, _ := json.Marshal(r.t)
		rev, err := r.s.st.Update(ctx, moveKey(r.t.Source, r.t.ID), data, r.rev)
		if err == nil {
			r.rev, r.saved = rev, time.Now()
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		// Changed since: cancelled, or claimed by another node.
		cur, rev, err := r.s.getMove(ctx, r.t.Source, r.t.ID)
		if err != nil {
			return errMoveOver
		}
		if cur.Owner != r.s.node {
			return errMoveOver
		}
		if cur.Status == MoveCancelling && r.t.Status == MoveRunning {
			r.t.Status = MoveCancelling
		}
		r.rev = rev
	}
	return errMoveOver
}

// finish records the task's end and frees its source queue for another.
func (r *moveRun) finish(ctx context.Context, status, reason string) error {
	r.t.Status, r.t.Failure, r.t.Ended, r.t.Owner, r.t.Lease = status, reason, time.Now().UTC(), "", time.Time{}
	if reason != "" {
		r.s.log.Warn("message move task failed", "task", r.t.ID, "source", r.t.Source, "reason", reason)
	}
	if err := r.checkpoint(ctx); err != nil {
		return err
	}
	return r.s.unlockMove(ctx, r.t.Source, r.t.ID)
}
