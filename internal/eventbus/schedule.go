package eventbus

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"bridgeport/internal/schedule"
	"bridgeport/internal/store"
)

// Scheduled rules fire on one node at a time, the holder of the schedule
// lease (one record, claimed by compare-and-set when it has run out, as
// replays are). The holder keeps every enabled schedule in one heap by
// due time and sleeps until the first: one goroutine and one timer for any
// number of schedules, none of them polling the store. A due time fires as
// an event stored with the rule's ARN on it (routed to that rule's targets
// only) and a message id made of the rule and the due time.
//
// The lease record holds the fired mark: every due time up to it has been
// stored. The holder moves it after each batch of events it stores, in the
// same write that renews the lease. A node that takes over (the holder
// died, or it is the holder restarted) starts from the mark: for each
// schedule, of the due times after the mark (which passed while no node
// was firing) the latest fires, late, if it is no older than the catch-up
// limit, and the others are skipped (firstDue). A holder killed between
// storing a batch and moving the mark leaves its due times after the mark:
// they fire again with the same message ids, and JetStream stores them
// once if that is inside the events stream's duplicate window (2
// minutes).
const (
	schedLeaseKey = "sched.lease"
	schedLease    = 15 * time.Second
	schedRenew    = 5 * time.Second
	// schedLate is how late a due time may fire however small the
	// catch-up limit: a takeover takes up to schedLease.
	schedLate = 90 * time.Second
	// schedBatch bounds the events of one store write.
	schedBatch = 1000
)

// schedLeaseRecord is the schedule lease.
type schedLeaseRecord struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
	Fired time.Time `json:"fired"`
}

// schedRef names a scheduled rule.
type schedRef struct{ bus, name string }

// schedEntry is one enabled schedule in the heap.
type schedEntry struct {
	ref   schedRef
	arn   string
	text  string // the expression
	since time.Time
	expr  *schedule.Expr
	due   time.Time
	index int
}

type schedHeap []*schedEntry

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *schedHeap) Push(x any) {
	e := x.(*schedEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *schedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// scheduler is the state of runSchedules.
type scheduler struct {
	s       *Service
	leader  bool
	rev     uint64    // the lease record's revision
	until   time.Time // the lease runs out
	renewAt time.Time
	fired   time.Time // every due time up to it is stored
	entries map[schedRef]*schedEntry
	heap    schedHeap
}

// runSchedules fires scheduled rules while this node holds the schedule
// lease, and tries to take it while it does not, until ctx ends.
func (s *Service) runSchedules(ctx context.Context) {
	sc := &scheduler{s: s, entries: make(map[schedRef]*schedEntry)}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			sc.release()
			return
		case <-timer.C:
		case <-s.reg.schedWake:
		}
		now := s.schedNow()
		switch {
		case !sc.leader:
			s.reg.takeScheduleChanges() // the claim reads every schedule
			sc.claim(ctx, now)
		case !now.Before(sc.renewAt):
			sc.renew(ctx, now)
		}
		if sc.leader {
			for _, ref := range s.reg.takeScheduleChanges() {
				sc.update(ref)
			}
			sc.fire(ctx, now)
		}
		timer.Reset(sc.wait(s.schedNow()))
	}
}

// wait returns how long to sleep: until the first due time or the lease's
// renewal, or a second while another node holds it.
func (sc *scheduler) wait(now time.Time) time.Duration {
	if !sc.leader {
		return time.Second
	}
	next := sc.renewAt
	if len(sc.heap) > 0 && sc.heap[0].due.Before(next) {
		next = sc.heap[0].due
	}
	return max(next.Sub(now), 0)
}

// claim takes the lease if nobody holds it, it has run out, or this node
// held it before a restart, and then loads every schedule.
func (sc *scheduler) claim(ctx context.Context, now time.Time) {
	s := sc.s
	l := schedLeaseRecord{Owner: s.node, Until: now.Add(schedLease), Fired: now}
	e, err := s.st.Get(ctx, schedLeaseKey)
	var rev uint64
	switch {
	case errors.Is(err, store.ErrNotFound):
		rev, err = s.put(ctx, schedLeaseKey, 0, l)
	case err != nil:
		return
	default:
		var old schedLeaseRecord
		if json.Unmarshal(e.Value, &old) == nil {
			if old.Owner != s.node && now.Before(old.Until) {
				return // held
			}
			if !old.Fired.IsZero() && old.Fired.Before(now) {
				l.Fired = old.Fired
			}
		}
		rev, err = s.put(ctx, schedLeaseKey, e.Revision, l)
	}
	if err != nil {
		return // another node took it first, or the store is away
	}
	sc.leader, sc.rev, sc.until, sc.renewAt, sc.fired = true, rev, l.Until, now.Add(schedRenew), l.Fired
	sc.load(now)
}

// renew extends the lease and moves the fired mark to sc.fired. It
// reports whether this node still holds the lease; one that cannot write
// keeps it until it runs out.
func (sc *scheduler) renew(ctx context.Context, now time.Time) bool {
	l := schedLeaseRecord{Owner: sc.s.node, Until: now.Add(schedLease), Fired: sc.fired}
	rev, err := sc.s.put(ctx, schedLeaseKey, sc.rev, l)
	switch {
	case err == nil:
		sc.rev, sc.until, sc.renewAt = rev, l.Until, now.Add(schedRenew)
		return true
	case lostRace(err) || !now.Before(sc.until):
		if ctx.Err() == nil {
			sc.s.log.Warn("schedule lease lost; another node fires the schedules", "error", err)
		}
		sc.stop()
		return false
	}
	sc.renewAt = now.Add(time.Second)
	return true
}

// release gives up the lease on a clean stop, with the fired mark, so
// that another node takes over at once.
func (sc *scheduler) release() {
	if !sc.leader {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = sc.s.put(ctx, schedLeaseKey, sc.rev, schedLeaseRecord{Fired: sc.fired})
	sc.stop()
}

func (sc *scheduler) stop() {
	sc.leader = false
	clear(sc.entries)
	sc.heap = sc.heap[:0]
}

// load puts every enabled schedule in the heap at its first due time
// (firstDue).
func (sc *scheduler) load(now time.Time) {
	clear(sc.entries)
	sc.heap = sc.heap[:0]
	for _, r := range sc.s.reg.scheduledRules() {
		e := sc.entry(r)
		if e == nil {
			continue
		}
		if e.due = sc.s.firstDue(e, sc.fired, now); !e.due.IsZero() {
			sc.entries[e.ref] = e
			heap.Push(&sc.heap, e)
		}
	}
}

// entry returns the heap entry of an enabled scheduled rule, or nil.
func (sc *scheduler) entry(r Rule) *schedEntry {
	if r.ScheduleExpression == nil || !r.enabled() {
		return nil
	}
	expr, err := schedule.Parse(*r.ScheduleExpression)
	if err != nil {
		sc.s.log.Error("stored schedule does not parse", "rule", r.Arn, "error", err)
		return nil
	}
	return &schedEntry{ref: schedRef{r.Bus, r.Name}, arn: r.Arn, text: *r.ScheduleExpression, since: r.ScheduleSince, expr: expr}
}

// update brings one rule's entry in line with its record: added, moved to
// its new first due time, or removed.
func (sc *scheduler) update(ref schedRef) {
	old := sc.entries[ref]
	r, _, ok := sc.s.reg.getRule(ref.bus, ref.name)
	var e *schedEntry
	if ok {
		e = sc.entry(r)
	}
	if e != nil && old != nil && e.text == old.text && e.since.Equal(old.since) {
		return // a change that leaves the schedule as it was
	}
	if old != nil {
		heap.Remove(&sc.heap, old.index)
		delete(sc.entries, ref)
	}
	if e == nil {
		return
	}
	if e.due = e.expr.Next(sc.fired, e.since); !e.due.IsZero() {
		sc.entries[ref] = e
		heap.Push(&sc.heap, e)
	}
}

// fire stores the events of every due time up to now, moves each schedule
// on to its next one, and then the fired mark to now. If a write fails,
// the node lets the lease go; the next holder (maybe this node again)
// starts from the mark.
func (sc *scheduler) fire(ctx context.Context, now time.Time) {
	if !now.Before(sc.until) {
		sc.stop() // the lease ran out without renewal
		return
	}
	if len(sc.heap) == 0 || sc.heap[0].due.After(now) {
		sc.fired = now
		return
	}
	var batch []store.Event
	for len(sc.heap) > 0 && !sc.heap[0].due.After(now) {
		e := sc.heap[0]
		batch = append(batch, sc.s.scheduledEvent(e.arn, e.due))
		if e.due = e.expr.Next(e.due, e.since); e.due.IsZero() {
			heap.Pop(&sc.heap)
			delete(sc.entries, e.ref)
		} else {
			heap.Fix(&sc.heap, 0)
		}
		if len(batch) == schedBatch || len(sc.heap) == 0 || sc.heap[0].due.After(now) {
			if err := sc.s.st.AppendEvents(ctx, batch); err != nil {
				if ctx.Err() == nil {
					sc.s.log.Error("fire schedules; the next holder of the lease fires them from the mark", "error", err)
				}
				sc.stop()
				return
			}
			sc.s.metrics.ScheduleFired(len(batch))
			batch = batch[:0]
		}
	}
	sc.fired = now
	sc.renew(ctx, now)
}

// firstDue returns an entry's first due time for a node that starts
// firing with the fired mark at mark. Due times after the mark passed
// while no node was firing: the latest of them fires, late, if it is no
// older than the catch-up limit (or schedLate, if that is longer); the
// others are skipped.
func (s *Service) firstDue(e *schedEntry, mark, now time.Time) time.Time {
	if mark.IsZero() || mark.After(now) {
		mark = now
	}
	if late := latestDue(e, laterOf(mark, now.Add(-max(s.catchUp, schedLate))), now); !late.IsZero() {
		if now.Sub(late) > schedLate {
			s.metrics.ScheduleCaughtUp()
			s.log.Warn("scheduled rule missed due times while no node was firing; its latest fires late", "rule", e.arn,
				"due", late.Format(time.RFC3339))
		}
		return late
	}
	return e.expr.Next(laterOf(mark, now), e.since)
}

// latestDue returns an expression's last due time in (from, to], or the
// zero time. It looks back through windows that double, so that it makes
// few steps for any period.
func latestDue(e *schedEntry, from, to time.Time) time.Time {
	for w := time.Minute; ; w *= 2 {
		start := laterOf(to.Add(-w), from)
		var last time.Time
		for t := e.expr.Next(start, e.since); !t.IsZero() && !t.After(to); t = e.expr.Next(t, e.since) {
			last = t
		}
		if !last.IsZero() || !start.After(from) {
			return last
		}
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// scheduledEvent is the event of a rule's due time: EventBridge's
// Scheduled Event, with the due time as its time and an id that is the
// same wherever and however often the due time fires.
func (s *Service) scheduledEvent(ruleArn string, due time.Time) store.Event {
	key := ruleArn + "@" + due.UTC().Format(time.RFC3339)
	sum := sha256.Sum256([]byte(key))
	sum[6] = sum[6]&0x0f | 0x50 // a name-based (version 5 style) UUID
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	data := s.encodeEvent(id, "aws.events", "Scheduled Event", []string{ruleArn}, formatEventTime(due), "{}")
	return store.Event{ID: id, Bus: defaultBus, Ingested: s.now(), Data: data, Rule: ruleArn, DedupeID: "schedule/" + key}
}

// NextDue returns a scheduled rule's next due time (zero if none).
func (s *Service) NextDue(r Rule) (time.Time, error) {
	if r.ScheduleExpression == nil {
		return time.Time{}, errors.New("the rule has no schedule")
	}
	expr, err := schedule.Parse(*r.ScheduleExpression)
	if err != nil {
		return time.Time{}, err
	}
	return expr.Next(s.schedNow(), r.ScheduleSince), nil
}

// ScheduleHolder returns the node that holds the schedule lease and its
// fired mark; held is false when nobody holds it.
func (s *Service) ScheduleHolder() (owner string, fired time.Time, held bool) {
	var l schedLeaseRecord
	if _, ok := s.reg.getObj(schedLeaseKey, &l); !ok {
		return "", time.Time{}, false
	}
	return l.Owner, l.Fired, l.Owner != "" && s.schedNow().Before(l.Until)
}
