package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message queues (the SQS-compatible queues) live in one stream, one subject
// per queue, with one durable pull consumer per queue. The consumer is the
// visibility engine: a received message is pending on it until it is acked
// (deleted) or its ack wait (the visibility timeout) ends; a negative
// acknowledgement with a delay changes that timeout. Receiving takes the
// next message from the consumer and deleting acks one message by its
// sequence, so both cost the same whatever the queue's length.
//
// JetStream accepts an ack from any earlier delivery of a message, so every
// receive also records the message's delivery count in a bucket; a receipt
// handle from an older receive no longer matches it and deletes nothing.
const (
	queuesStream   = "BP_QUEUES"
	queuesSubject  = "bp.q"
	receiptsBucket = "bridgeport_receipts"

	hdrQueueID   = "Bp-Message-Id"
	hdrNotBefore = "Bp-Not-Before" // unix nanoseconds; the message is delayed until then

	// MaxQueueMessage is the largest message a queue stores, with its
	// attributes and framing.
	MaxQueueMessage = 1<<20 + 64<<10
	// maxInFlight is SQS's limit of in-flight messages in a standard queue.
	maxInFlight = 120000
	// receiptsAge bounds how long a receipt is kept: longer than the
	// longest retention (14 days) plus the longest visibility (12 hours).
	receiptsAge = 15 * 24 * time.Hour
)

// Queue errors.
var (
	// ErrBadReceipt: the receipt handle is not one this queue issued.
	ErrBadReceipt = errors.New("receipt handle is not valid")
	// ErrStaleReceipt: the message was deleted or received again since the
	// receipt handle was issued.
	ErrStaleReceipt = errors.New("message is not in flight with this receipt handle")
)

func (s *Store) ensureQueues(ctx context.Context) error {
	var err error
	s.queues, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        queuesStream,
		Description: "messages of the SQS-compatible queues, one subject per queue",
		Subjects:    []string{queuesSubject + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		// SQS FIFO queues deduplicate over five minutes; the same window
		// makes a dead-letter send repeated after a crash a duplicate.
		Duplicates:  5 * time.Minute,
		AllowMsgTTL: true,
		MaxMsgSize:  MaxQueueMessage,
	})
	if err != nil {
		return fmt.Errorf("queues stream: %w", err)
	}
	s.receipts, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      receiptsBucket,
		Description: "the latest receive of each in-flight queue message",
		History:     1,
		TTL:         receiptsAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("receipts bucket: %w", err)
	}
	return nil
}

func queueConsumer(queueID string) string { return "q_" + queueID }

func queueSubject(queueID string) string { return queuesSubject + "." + queueID }

// lease is the consumer's ack wait: how long a message taken from the
// consumer stays invisible if the process dies before it records the
// receive and sets the message's own visibility (a negative ack with that
// delay, which every receive sends; milliseconds after the take). Being
// fixed, it never shifts the visibility of messages already in flight.
// Such a message has no receipt, so QueueCounts counts it as visible
// though nobody can receive it: a minute, not five, so that a message
// move task resumed after a crash waits for it (moveIdle, two minutes)
// rather than finishing without it.
const lease = time.Minute

// OpenQueue creates the consumer of a queue. queueID is a token (letters,
// digits, '-', '_').
func (s *Store) OpenQueue(ctx context.Context, queueID string) error {
	_, err := s.durable(ctx, queuesStream, jetstream.ConsumerConfig{
		Durable:       queueConsumer(queueID),
		Description:   "receives of queue " + queueID,
		FilterSubject: queueSubject(queueID),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       lease,
		MaxDeliver:    -1,
		MaxAckPending: maxInFlight,
		MaxWaiting:    1024,
		Replicas:      s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("queue %s: %w", queueID, err)
	}
	return nil
}

// RemoveQueue deletes a queue's consumer and messages.
func (s *Store) RemoveQueue(ctx context.Context, queueID string) error {
	err := s.queues.DeleteConsumer(ctx, queueConsumer(queueID))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("queue %s: %w", queueID, err)
	}
	return s.PurgeQueue(ctx, queueID)
}

// PurgeQueue deletes every message of a queue, and their receipts.
func (s *Store) PurgeQueue(ctx context.Context, queueID string) error {
	if err := s.queues.Purge(ctx, jetstream.WithPurgeSubject(queueSubject(queueID))); err != nil {
		return fmt.Errorf("purge queue %s: %w", queueID, err)
	}
	rs, err := s.js.Stream(ctx, "KV_"+receiptsBucket)
	if err == nil {
		err = rs.Purge(ctx, jetstream.WithPurgeSubject("$KV."+receiptsBucket+"."+queueID+".>"))
	}
	if err != nil {
		return fmt.Errorf("purge receipts of queue %s: %w", queueID, err)
	}
	return nil
}

// QueueMessage is a message to store in a queue.
type QueueMessage struct {
	// ID is the message's id; a message with the same DedupeID stored less
	// than five minutes earlier is not stored again.
	ID       string
	DedupeID string // empty: ID
	Data     []byte
	// Delay keeps the message invisible for that long after it is sent.
	Delay time.Duration
	// Retention deletes the message that long after it is sent; 0 keeps it.
	Retention time.Duration
	// Meta is stored with the message, for bridgeport's own use.
	Meta map[string]string
}

// SendToQueue stores a message and returns once it is stored, with its
// sequence and whether it was a duplicate of an earlier send.
func (s *Store) SendToQueue(ctx context.Context, queueID string, m QueueMessage) (seq uint64, dup bool, err error) {
	msg := nats.NewMsg(queueSubject(queueID))
	for k, v := range m.Meta {
		msg.Header.Set(k, v)
	}
	msg.Header.Set(hdrQueueID, m.ID)
	if m.Delay > 0 {
		msg.Header.Set(hdrNotBefore, strconv.FormatInt(time.Now().Add(m.Delay).UnixNano(), 10))
	}
	msg.Data = m.Data
	dedupe := m.DedupeID
	if dedupe == "" {
		dedupe = m.ID
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID(queueID + "/" + dedupe))}
	if m.Retention > 0 {
		opts = append(opts, jetstream.WithMsgTTL(max(m.Retention, time.Second)))
	}
	ack, err := s.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return 0, false, fmt.Errorf("send to queue %s: %w", queueID, err)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// Received is a message taken from a queue.
type Received struct {
	Seq          uint64
	ID           string
	Data         []byte
	Meta         map[string]string
	Sent         time.Time
	ReceiveCount int
	// Handle deletes the message or changes its visibility, until the
	// message is received again.
	Handle string
}

// ReceiveOptions say how to receive.
type ReceiveOptions struct {
	Max int // 1 to 10
	// Wait is how long to wait for a first message when none is visible.
	Wait time.Duration
	// Visibility is the visibility timeout of this receive.
	Visibility time.Duration
	// Retention, when set, deletes instead of returning messages sent
	// longer ago (after the queue's retention period was shortened).
	Retention time.Duration
}

// shortPoll is how long a receive that must not wait still waits for
// messages the consumer has not been told about yet (a message published
// a moment ago).
const shortPoll = 50 * time.Millisecond

// Receive takes up to o.Max visible messages from a queue, waiting up to
// o.Wait for the first. Messages come back invisible for o.Visibility.
// Every message taken from the consumer is either returned or handed back
// (visible again, or delayed until due), also when ctx ends.
func (s *Store) Receive(ctx context.Context, queueID string, o ReceiveOptions) ([]Received, error) {
	cons, err := s.queues.Consumer(ctx, queueConsumer(queueID))
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", queueID, err)
	}
	deadline := time.Now().Add(o.Wait)
	var out []Received
	taken := map[uint64]bool{} // stream sequences returned by this call
	// Messages received with visibility 0 become visible when the call
	// ends, so that it does not take them again.
	var visibleAtEnd []jetstream.Msg
	defer func() {
		for _, m := range visibleAtEnd {
			_ = m.Nak()
		}
	}()
	first, retried := true, false
	for len(out) < o.Max && ctx.Err() == nil {
		need := o.Max - len(out)
		var batch jetstream.MessageBatch
		switch remaining := time.Until(deadline); {
		case first || len(out) > 0:
			batch, err = cons.FetchNoWait(need)
		case remaining > 0:
			// Long poll for one message: with a batch of one the pull
			// request ends the moment one arrives.
			batch, err = cons.Fetch(1, jetstream.FetchMaxWait(min(remaining, 30*time.Second)))
		case !retried:
			retried = true
			batch, err = cons.Fetch(need, jetstream.FetchMaxWait(shortPoll))
		}
		if batch == nil && err == nil {
			break
		}
		first = false
		if err != nil {
			return out, fmt.Errorf("receive from queue %s: %w", queueID, err)
		}
		got, again, err := s.drain(ctx, queueID, batch, o, taken, &out, &visibleAtEnd)
		if err != nil {
			return out, err
		}
		if again || (got == 0 && len(out) > 0) {
			break
		}
	}
	return out, nil
}

// drain handles the messages of one fetch. got counts the messages
// fetched; again reports that a message this call already returned came
// back (visibility 0), which ends the call.
func (s *Store) drain(ctx context.Context, queueID string, batch jetstream.MessageBatch, o ReceiveOptions, taken map[uint64]bool,
	out *[]Received, visibleAtEnd *[]jetstream.Msg) (got int, again bool, err error) {
	msgs := batch.Messages()
	for {
		var m jetstream.Msg
		var ok bool
		select {
		case m, ok = <-msgs:
		case <-ctx.Done():
			// Hand back whatever the fetch still delivers.
			go func() {
				for m := range msgs {
					_ = m.Nak()
				}
			}()
			return got, false, ctx.Err()
		}
		if !ok {
			break
		}
		got++
		if err != nil || again {
			_ = m.Nak()
			continue
		}
		md, merr := m.Metadata()
		if merr == nil && taken[md.Sequence.Stream] {
			again = true
			_ = m.Nak()
			continue
		}
		r, keep, rerr := s.received(ctx, queueID, m, o)
		if rerr != nil {
			err = rerr
			_ = m.Nak()
			continue
		}
		if keep {
			taken[r.Seq] = true
			*out = append(*out, r)
			if o.Visibility <= 0 {
				*visibleAtEnd = append(*visibleAtEnd, m)
			}
		}
	}
	if berr := batch.Error(); berr != nil && err == nil && !errors.Is(berr, nats.ErrTimeout) && !errors.Is(berr, jetstream.ErrNoMessages) {
		err = fmt.Errorf("receive from queue %s: %w", queueID, berr)
	}
	return got, again, err
}

// received checks a delivered message: one still delayed or past its
// retention is not returned; the others get their receipt recorded, then
// their visibility.
func (s *Store) received(ctx context.Context, queueID string, m jetstream.Msg, o ReceiveOptions) (Received, bool, error) {
	md, err := m.Metadata()
	if err != nil {
		return Received{}, false, err
	}
	h := m.Headers()
	rc := receipt{queue: queueID, seq: md.Sequence.Stream, dseq: md.Sequence.Consumer, delivered: md.NumDelivered}
	skips := 0
	if nb := h.Get(hdrNotBefore); nb != "" {
		ns, _ := strconv.ParseInt(nb, 10, 64)
		due := time.Unix(0, ns)
		prev, _, err := s.leaderGet(ctx, s.receipts, rc.key())
		if err == nil {
			skips = parseSkips(prev)
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return Received{}, false, fmt.Errorf("read receipt: %w", err)
		}
		if wait := time.Until(due); wait > 0 {
			// Still delayed: remember the delivery spent on finding out
			// (receive counts leave it out) and hand it back until due.
			if _, err := s.receipts.Put(ctx, rc.key(), skipValue(skips+1, due)); err != nil {
				return Received{}, false, fmt.Errorf("record receipt: %w", err)
			}
			return Received{}, false, m.NakWithDelay(wait)
		}
	}
	sent := sentTime(h, md.Timestamp)
	if o.Retention > 0 && time.Since(sent) > o.Retention {
		return Received{}, false, m.Ack()
	}
	// The receipt first: a receive that follows this one's visibility can
	// only record a later delivery.
	if _, err := s.receipts.Put(ctx, rc.key(), rc.value(time.Now().Add(o.Visibility))); err != nil {
		return Received{}, false, fmt.Errorf("record receipt: %w", err)
	}
	if o.Visibility > 0 {
		if err := m.NakWithDelay(o.Visibility); err != nil {
			return Received{}, false, err
		}
	}
	return Received{Seq: md.Sequence.Stream, ID: h.Get(hdrQueueID), Data: m.Data(), Meta: flat(h), Sent: sent,
		ReceiveCount: max(int(md.NumDelivered)-skips, 1), Handle: rc.encode()}, true, nil
}

// skipValue is the receipts record of a delayed message found before it
// was due: how many deliveries were spent so, and when it is due.
func skipValue(skips int, due time.Time) []byte {
	return []byte("s" + strconv.Itoa(skips) + " " + strconv.FormatInt(due.UnixNano(), 10))
}

func parseSkips(v []byte) int {
	d, _, _ := strings.Cut(string(v), " ")
	n, err := strconv.Atoi(strings.TrimPrefix(d, "s"))
	if err != nil || !strings.HasPrefix(d, "s") {
		return 0
	}
	return n
}

// receipt is what a receipt handle carries: the queue, the message's stream
// sequence, and the delivery it was received with.
type receipt struct {
	queue     string
	seq       uint64
	dseq      uint64
	delivered uint64
}

const receiptPrefix = "bp1."

func (r receipt) key() string { return r.queue + "." + strconv.FormatUint(r.seq, 10) }

// value is what the receipts bucket holds for a message: the delivery it
// was last received with and when it becomes visible again.
func (r receipt) value(visible time.Time) []byte {
	return []byte(strconv.FormatUint(r.delivered, 10) + " " + strconv.FormatInt(visible.UnixNano(), 10))
}

// parseReceiptValue reads a receipts bucket value.
func parseReceiptValue(v []byte) (delivered string, visible time.Time) {
	d, ns, _ := strings.Cut(string(v), " ")
	n, _ := strconv.ParseInt(ns, 10, 64)
	return d, time.Unix(0, n)
}

func (r receipt) encode() string {
	b := make([]byte, 0, 40+len(r.queue))
	b = binary.AppendUvarint(b, r.seq)
	b = binary.AppendUvarint(b, r.dseq)
	b = binary.AppendUvarint(b, r.delivered)
	b = append(b, r.queue...)
	return receiptPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func decodeReceipt(queueID, handle string) (receipt, error) {
	raw, ok := strings.CutPrefix(handle, receiptPrefix)
	if !ok {
		return receipt{}, ErrBadReceipt
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return receipt{}, ErrBadReceipt
	}
	var r receipt
	for _, f := range []*uint64{&r.seq, &r.dseq, &r.delivered} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return receipt{}, ErrBadReceipt
		}
		*f, b = v, b[n:]
	}
	if string(b) != queueID || r.seq == 0 || r.delivered == 0 {
		return receipt{}, ErrBadReceipt
	}
	r.queue = queueID
	return r, nil
}

// ackSubject is the reply subject JetStream gave the delivery; only the
// stream, consumer and the three counters matter to the server.
func (r receipt) ackSubject() string {
	return fmt.Sprintf("$JS.ACK.%s.%s.%d.%d.%d.0.0", queuesStream, queueConsumer(r.queue), r.delivered, r.seq, r.dseq)
}

// current checks that the receipt is of the latest receive of a message
// still in the queue.
func (s *Store) current(ctx context.Context, r receipt) (uint64, error) {
	value, rev, err := s.leaderGet(ctx, s.receipts, r.key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrStaleReceipt
	}
	if err != nil {
		return 0, fmt.Errorf("read receipt: %w", err)
	}
	if d, _ := parseReceiptValue(value); d != strconv.FormatUint(r.delivered, 10) {
		return 0, ErrStaleReceipt
	}
	return rev, nil
}

// CheckReceipt reports whether handle is well formed for the queue
// (ErrBadReceipt otherwise) and still current (ErrStaleReceipt otherwise).
func (s *Store) CheckReceipt(ctx context.Context, queueID, handle string) (uint64, error) {
	r, err := decodeReceipt(queueID, handle)
	if err != nil {
		return 0, err
	}
	if _, err := s.current(ctx, r); err != nil {
		return 0, err
	}
	return r.seq, nil
}

// DeleteReceived deletes the message a receipt handle names. A handle of an
// earlier receive deletes nothing and returns ErrStaleReceipt.
func (s *Store) DeleteReceived(ctx context.Context, queueID, handle string) error {
	r, err := decodeReceipt(queueID, handle)
	if err != nil {
		return err
	}
	rev, err := s.current(ctx, r)
	if err != nil {
		return err
	}
	// A synchronous ack: the server answers once the message is gone.
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.nc.RequestWithContext(actx, r.ackSubject(), []byte("+ACK")); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	if err := s.receipts.Delete(ctx, r.key(), jetstream.LastRevision(rev)); err != nil &&
		!conflict(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Warn("forget receipt", "error", err)
	}
	return nil
}

// ChangeVisibility makes the message a receipt handle names visible again
// after d (0: at once).
func (s *Store) ChangeVisibility(ctx context.Context, queueID, handle string, d time.Duration) error {
	r, err := decodeReceipt(queueID, handle)
	if err != nil {
		return err
	}
	rev, err := s.current(ctx, r)
	if err != nil {
		return err
	}
	if _, err := s.queues.GetMsg(ctx, r.seq); errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrStaleReceipt
	}
	if _, err := s.receipts.Update(ctx, r.key(), r.value(time.Now().Add(d)), rev); conflict(err) {
		return ErrStaleReceipt // received again meanwhile
	} else if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	body := []byte("-NAK")
	if d > 0 {
		body = fmt.Appendf(nil, `-NAK {"delay": %d}`, d.Nanoseconds())
	}
	if err := s.nc.Publish(r.ackSubject(), body); err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	// A round trip, so that a receive through another connection sees it.
	return s.nc.FlushTimeout(10 * time.Second)
}

// QueueCounts returns the approximate numbers of visible messages, of
// messages in flight (received, not deleted, visibility timeout running)
// and of delayed messages (those a receive found before they were due). It
// reads the receipts of the queue's received messages, so its cost grows
// with the number in flight (at most 120,000), not with the queue.
func (s *Store) QueueCounts(ctx context.Context, queueID string) (visible, inFlight, delayed int, err error) {
	info, err := s.queues.Info(ctx, jetstream.WithSubjectFilter(queueSubject(queueID)))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue %s: %w", queueID, err)
	}
	total := int(info.State.Subjects[queueSubject(queueID)])
	w, err := s.receipts.Watch(ctx, queueID+".>", jetstream.IgnoreDeletes())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue %s receipts: %w", queueID, err)
	}
	defer w.Stop()
	now := time.Now()
	for e := range w.Updates() {
		if e == nil {
			break
		}
		d, until := parseReceiptValue(e.Value())
		switch {
		case !until.After(now):
		case strings.HasPrefix(d, "s"):
			delayed++
		default:
			inFlight++
		}
	}
	// Receipts of messages deleted by their retention can linger.
	inFlight = min(inFlight, total)
	delayed = min(delayed, total-inFlight)
	return total - inFlight - delayed, inFlight, delayed, nil
}

// QueuedMessage reads a message by its sequence without receiving it.
func (s *Store) QueuedMessage(ctx context.Context, queueID string, seq uint64) (Received, error) {
	raw, err := s.queues.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Received{}, ErrNotFound
	}
	if err != nil {
		return Received{}, fmt.Errorf("read message: %w", err)
	}
	if raw.Subject != queueSubject(queueID) {
		return Received{}, ErrNotFound
	}
	return Received{Seq: seq, ID: raw.Header.Get(hdrQueueID), Data: raw.Data, Meta: flat(raw.Header), Sent: raw.Time}, nil
}

// sentTime is when a queue message was sent: when it was stored, or for a
// message copied from another store, the original's time.
func sentTime(h nats.Header, stored time.Time) time.Time {
	if v, err := strconv.ParseInt(h.Get(hdrSent), 10, 64); err == nil {
		return time.Unix(0, v)
	}
	return stored
}

// flat returns the first value of each header.
func flat(h nats.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// PeekQueue reads up to limit messages of a queue, oldest first from the
// stream sequence from on (1: the first), without receiving them: their
// visibility and receive counts do not change. Each is one lookup of the
// next message on the queue's subject.
func (s *Store) PeekQueue(ctx context.Context, queueID string, from uint64, limit int) ([]Received, error) {
	var out []Received
	err := scan(ctx, s.queues, queueSubject(queueID), max(from, 1), func(raw *jetstream.RawStreamMsg) bool {
		out = append(out, Received{Seq: raw.Sequence, ID: raw.Header.Get(hdrQueueID), Data: raw.Data, Meta: flat(raw.Header), Sent: sentTime(raw.Header, raw.Time)})
		return len(out) < limit
	})
	if err != nil {
		return out, fmt.Errorf("peek queue %s: %w", queueID, err)
	}
	return out, nil
}
