package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
	"bridgeport/internal/store"
)

// EventsPrincipal is the service principal EventBridge sends as.
const EventsPrincipal = "events.amazonaws.com"

// metaDedupe, in a Delivery's Meta, replaces the message's deduplication
// id; it is not stored.
const metaDedupe = "Bp-Dedupe"

// Delivery is a message EventBridge sends: an event to a dead-letter queue
// or to a queue target.
type Delivery struct {
	QueueArn string
	// SourceArn is the rule's ARN: aws:SourceArn in the queue's policy.
	SourceArn string
	Body      string
	// Attributes are sent as String message attributes.
	Attributes map[string]string
	// DedupeID makes a send repeated after a crash a duplicate that is not
	// stored again (within five minutes).
	DedupeID string
	// GroupID is the MessageGroupId for FIFO queues.
	GroupID string
	// Meta is stored with the message, invisible to SQS clients.
	Meta map[string]string
}

// SendError is a send that cannot succeed as things stand: the queue does
// not exist, its policy does not let EventBridge send, or the message is
// refused. Code is the EventBridge error code.
type SendError struct {
	Code    string // NO_RESOURCE, NO_PERMISSIONS or INVALID_PARAMETER
	Message string
}

func (e *SendError) Error() string { return e.Code + ": " + e.Message }

// Deliver sends a message on EventBridge's behalf, if the queue's resource
// policy allows events.amazonaws.com to call sqs:SendMessage on it for this
// rule. It returns a *SendError for a send that cannot succeed and another
// error when the store is unavailable (worth retrying).
func (s *Service) Deliver(ctx context.Context, d Delivery) (messageID string, err error) {
	name, ok := s.NameFromArn(d.QueueArn)
	if !ok {
		return "", &SendError{Code: "NO_RESOURCE", Message: fmt.Sprintf("%s is not a queue of account %s in %s", d.QueueArn, s.cfg.AccountID, s.cfg.Region)}
	}
	q, _, err := s.Get(ctx, name)
	var aerr *awsapi.Error
	if errors.As(err, &aerr) {
		return "", &SendError{Code: "NO_RESOURCE", Message: fmt.Sprintf("queue %s does not exist", d.QueueArn)}
	}
	if err != nil {
		return "", err
	}
	if !s.allowsEvents(q, d.SourceArn) {
		return "", &SendError{Code: "NO_PERMISSIONS", Message: fmt.Sprintf(
			"the policy of queue %s does not allow %s to call sqs:SendMessage for %s", d.QueueArn, EventsPrincipal, d.SourceArn)}
	}
	body := d.Body
	e := sendEntry{MessageBody: &body, MessageAttributes: map[string]Attribute{}}
	for k, v := range d.Attributes {
		if v == "" {
			continue // SQS refuses empty attribute values
		}
		e.MessageAttributes[k] = Attribute{DataType: "String", StringValue: &v}
	}
	if q.FIFO() {
		group := d.GroupID
		e.MessageGroupId = &group
		e.MessageDeduplicationId = &d.DedupeID
	}
	meta := map[string]string{metaDedupe: "eb/" + d.DedupeID}
	for k, v := range d.Meta {
		meta[k] = v
	}
	res, err := s.send(ctx, q, &e, EventsPrincipal, meta)
	if errors.As(err, &aerr) {
		return "", &SendError{Code: "INVALID_PARAMETER", Message: aerr.Message}
	}
	if err != nil {
		return "", err
	}
	return res.MessageId, nil
}

// allowsEvents evaluates the queue's policy for a send by EventBridge from
// a rule.
func (s *Service) allowsEvents(q *Queue, sourceArn string) bool {
	doc, ok := q.Attrs["Policy"]
	if !ok || doc == "" {
		return false
	}
	p, err := policy.ParseKind(doc, policy.ResourcePolicy)
	if err != nil {
		return false
	}
	req := policy.Request{
		Principal: policy.Principal{Service: EventsPrincipal},
		Action:    "sqs:SendMessage",
		Resource:  s.Arn(q.Name),
		Context:   map[string]string{"aws:SourceAccount": s.cfg.AccountID},
	}
	if sourceArn != "" {
		req.Context["aws:SourceArn"] = sourceArn
	}
	return p.Evaluate(req) == policy.Allow
}

// validPolicy checks a Policy attribute.
func validPolicy(doc string) bool {
	if doc == "" {
		return true
	}
	_, err := policy.ParseKind(doc, policy.ResourcePolicy)
	return err == nil
}

// Held is a message its caller holds by a current receipt handle.
type Held struct {
	MessageID string
	// Seq orders the messages of every queue by the time they were stored.
	Seq  uint64
	Body string
	// Attributes are the message's String attributes.
	Attributes map[string]string
	// Meta is what was stored with the message for bridgeport's own use.
	Meta map[string]string
}

// Hold returns the message a current receipt handle of the queue at
// queueURL names, without changing it. Errors are SQS's: no such queue, a
// receipt handle that is not valid, or a message no longer in flight with
// that handle.
func (s *Service) Hold(ctx context.Context, queueURL, handle string) (*Held, error) {
	q, _, err := s.byURL(ctx, &queueURL)
	if err != nil {
		return nil, err
	}
	seq, err := s.st.CheckReceipt(ctx, q.ID, handle)
	switch {
	case errors.Is(err, store.ErrBadReceipt):
		return nil, errBadReceipt(handle)
	case errors.Is(err, store.ErrStaleReceipt):
		return nil, errNotInflight()
	case err != nil:
		return nil, err
	}
	r, err := s.st.QueuedMessage(ctx, q.ID, seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotInflight()
	}
	if err != nil {
		return nil, err
	}
	m, err := decodeStored(r.Data)
	if err != nil {
		return nil, fmt.Errorf("queue message %d: %w", seq, err)
	}
	h := &Held{MessageID: r.ID, Seq: seq, Body: m.Body, Attributes: map[string]string{}, Meta: r.Meta}
	for k, a := range m.Attrs {
		if a.StringValue != nil {
			h.Attributes[k] = *a.StringValue
		}
	}
	return h, nil
}

// Mark returns the mark of the queue at queueURL: every message stored
// later has a higher Held.Seq. Errors are SQS's for a queue that does not
// exist.
func (s *Service) Mark(ctx context.Context, queueURL string) (uint64, error) {
	if _, _, err := s.byURL(ctx, &queueURL); err != nil {
		return 0, err
	}
	return s.st.QueueMark(ctx)
}

// Peeked is a message read without being received.
type Peeked struct {
	Seq        uint64
	MessageID  string
	Body       string
	Sent       time.Time
	Attributes map[string]string // the message attributes with a string value
}

// Peek reads up to limit messages of the queue at queueURL, oldest first
// from the stream sequence from on, visible or not, without receiving
// them: their visibility and receive counts do not change. It returns
// them and the sequence to go on from (0 when none is left).
func (s *Service) Peek(ctx context.Context, queueURL string, from uint64, limit int) ([]Peeked, uint64, error) {
	q, _, err := s.byURL(ctx, &queueURL)
	if err != nil {
		return nil, 0, err
	}
	msgs, err := s.st.PeekQueue(ctx, q.ID, from, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Peeked, 0, len(msgs))
	for _, r := range msgs {
		p := Peeked{Seq: r.Seq, MessageID: r.ID, Sent: r.Sent, Attributes: map[string]string{}}
		if m, err := decodeStored(r.Data); err == nil {
			p.Body = m.Body
			for k, a := range m.Attrs {
				if a.StringValue != nil {
					p.Attributes[k] = *a.StringValue
				}
			}
		}
		out = append(out, p)
	}
	var next uint64
	if len(msgs) == limit {
		next = msgs[len(msgs)-1].Seq + 1
	}
	return out, next, nil
}

// DeleteHeld deletes a held message by its receipt handle.
func (s *Service) DeleteHeld(ctx context.Context, queueURL, handle string) error {
	q, _, err := s.byURL(ctx, &queueURL)
	if err != nil {
		return err
	}
	return s.deleteOne(ctx, q, handle)
}

// Depth is a queue's approximate message counts.
type Depth struct {
	Name                       string
	Visible, InFlight, Delayed int
}

// Depths returns every queue's approximate message counts.
func (s *Service) Depths(ctx context.Context) ([]Depth, error) {
	entries, err := s.st.List(ctx, "queue.")
	if err != nil {
		return nil, err
	}
	var out []Depth
	for _, e := range entries {
		var q Queue
		if json.Unmarshal(e.Value, &q) != nil {
			continue
		}
		v, f, d, err := s.st.QueueCounts(ctx, q.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Depth{Name: q.Name, Visible: v, InFlight: f, Delayed: d})
	}
	return out, nil
}

// QueueCheck is what diagnostics need to know of a queue EventBridge sends
// to.
type QueueCheck struct {
	Exists, FIFO bool
	// AllowsEvents: the queue's policy lets EventBridge send for the rule.
	AllowsEvents bool
	Visible      int
	// ErrorCodes counts the ERROR_CODE attributes of the first 1,000
	// messages (dead letters), by code.
	ErrorCodes map[string]int
}

// Check inspects the queue arn for a rule's sends, without changing it.
func (s *Service) Check(ctx context.Context, arn, ruleArn string) (QueueCheck, error) {
	var c QueueCheck
	name, ok := s.NameFromArn(arn)
	if !ok {
		return c, nil
	}
	q, _, err := s.Get(ctx, name)
	var aerr *awsapi.Error
	if errors.As(err, &aerr) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	c.Exists, c.FIFO, c.AllowsEvents = true, q.FIFO(), s.allowsEvents(q, ruleArn)
	if c.Visible, _, _, err = s.st.QueueCounts(ctx, q.ID); err != nil {
		return c, err
	}
	msgs, err := s.st.PeekQueue(ctx, q.ID, 1, 1000)
	if err != nil {
		return c, err
	}
	c.ErrorCodes = map[string]int{}
	for _, r := range msgs {
		m, err := decodeStored(r.Data)
		if err != nil {
			continue
		}
		if a, ok := m.Attrs["ERROR_CODE"]; ok && a.StringValue != nil {
			c.ErrorCodes[*a.StringValue]++
		}
	}
	return c, nil
}
