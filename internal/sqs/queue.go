// Package sqs is bridgeport's SQS-compatible queue service: standard (and
// FIFO-named) queues over the SQS JSON 1.0 protocol, stored in JetStream,
// used as EventBridge dead-letter queues and as rule targets. Queue records
// live in the configuration bucket; messages, visibility and receipts in the
// store's queue stream.
package sqs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// Config builds a Service.
type Config struct {
	Store     *store.Store
	Region    string
	AccountID string
	// Listen is the address queue URLs name when a request has no Host.
	Listen string
	// NodeID names this node among those that share the store: the
	// owner of the message move tasks it runs.
	NodeID string
	Logger *slog.Logger
}

// Service answers the SQS API and sends messages for EventBridge.
type Service struct {
	cfg  Config
	st   *store.Store
	log  *slog.Logger
	node string

	moveWake chan struct{}
	stop     context.CancelFunc
	done     chan struct{}
}

// New returns a Service.
func New(cfg Config) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	node := cfg.NodeID
	if node == "" {
		node = newID()
	}
	return &Service{cfg: cfg, st: cfg.Store, log: log, node: node, moveWake: make(chan struct{}, 1)}
}

// Queue is a queue's record.
type Queue struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"` // the store's token for its messages
	Created  time.Time         `json:"created"`
	Modified time.Time         `json:"modified"`
	Attrs    map[string]string `json:"attrs"` // as set, without defaults
	Tags     map[string]string `json:"tags,omitempty"`
	Purged   time.Time         `json:"purged,omitzero"`
}

// Arn returns the queue's ARN.
func (s *Service) Arn(name string) string {
	return "arn:aws:sqs:" + s.cfg.Region + ":" + s.cfg.AccountID + ":" + name
}

// FIFO reports whether the queue is a FIFO queue.
func (q *Queue) FIFO() bool { return q.Attrs["FifoQueue"] == "true" }

// attr returns an attribute's value or its default.
func (q *Queue) attr(name string) string {
	if v, ok := q.Attrs[name]; ok {
		return v
	}
	return defaults[name]
}

func (q *Queue) seconds(name string) time.Duration {
	n, _ := strconv.Atoi(q.attr(name))
	return time.Duration(n) * time.Second
}

func (q *Queue) maxSize() int {
	n, _ := strconv.Atoi(q.attr("MaximumMessageSize"))
	return n
}

func queueKey(name string) string { return "queue." + store.Token(name) }

// defaults are the values of attributes not set.
var defaults = map[string]string{
	"DelaySeconds":                  "0",
	"MaximumMessageSize":            "1048576",
	"MessageRetentionPeriod":        "345600",
	"ReceiveMessageWaitTimeSeconds": "0",
	"VisibilityTimeout":             "30",
	"SqsManagedSseEnabled":          "false",
}

// attrRule checks one settable attribute's value.
type attrRule struct {
	min, max  int  // for numbers
	number    bool // the value is a whole number in [min, max]
	createdOK bool // may only be given at creation
	fifoOnly  bool
	check     func(string) bool
}

var settable = map[string]attrRule{
	"DelaySeconds":                  {number: true, min: 0, max: 900},
	"MaximumMessageSize":            {number: true, min: 1024, max: 1048576},
	"MessageRetentionPeriod":        {number: true, min: 60, max: 1209600},
	"ReceiveMessageWaitTimeSeconds": {number: true, min: 0, max: 20},
	"VisibilityTimeout":             {number: true, min: 0, max: 43200},
	"Policy":                        {check: validPolicy},
	"RedrivePolicy":                 {check: validRedrive},
	"RedriveAllowPolicy":            {check: validJSON},
	"KmsMasterKeyId":                {},
	"KmsDataKeyReusePeriodSeconds":  {number: true, min: 60, max: 86400},
	"SqsManagedSseEnabled":          {check: isBool},
	"FifoQueue":                     {createdOK: true, check: isBool},
	"ContentBasedDeduplication":     {fifoOnly: true, check: isBool},
	"DeduplicationScope":            {fifoOnly: true, check: oneOf("messageGroup", "queue")},
	"FifoThroughputLimit":           {fifoOnly: true, check: oneOf("perQueue", "perMessageGroupId")},
}

func isBool(v string) bool { return v == "true" || v == "false" }

func oneOf(vals ...string) func(string) bool {
	return func(v string) bool {
		for _, x := range vals {
			if v == x {
				return true
			}
		}
		return false
	}
}

func validJSON(v string) bool { return v == "" || json.Valid([]byte(v)) }

// redrivePolicy is SQS's RedrivePolicy attribute: after maxReceiveCount
// receives, a message moves to the dead-letter queue.
type redrivePolicy struct {
	Target   string          `json:"deadLetterTargetArn"`
	MaxCount json.RawMessage `json:"maxReceiveCount"` // a number or a string
}

func parseRedrive(v string) (target string, maxCount int, ok bool) {
	var rp redrivePolicy
	if json.Unmarshal([]byte(v), &rp) != nil || rp.Target == "" {
		return "", 0, false
	}
	n, err := strconv.Atoi(strings.Trim(string(rp.MaxCount), `"`))
	if err != nil || n < 1 || n > 1000 {
		return "", 0, false
	}
	return rp.Target, n, true
}

func validRedrive(v string) bool {
	_, _, ok := parseRedrive(v)
	return v == "" || ok
}

// checkAttrs validates attributes given to CreateQueue (creating) or
// SetQueueAttributes.
func checkAttrs(attrs map[string]string, fifo, creating bool) error {
	for name, v := range attrs {
		rule, ok := settable[name]
		if !ok {
			return errAttributeName(name)
		}
		switch {
		case rule.createdOK && !creating:
			return errAttributeName(name)
		case rule.fifoOnly && !fifo:
			return errAttributeName(name)
		case rule.number:
			n, err := strconv.Atoi(v)
			if err != nil || n < rule.min || n > rule.max {
				return errAttributeValue(name)
			}
		case rule.check != nil && !rule.check(v):
			return errAttributeValue(name)
		}
	}
	return nil
}

var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func checkName(name string, fifo bool) error {
	base, isFifo := strings.CutSuffix(name, ".fifo")
	if fifo != isFifo || !queueNameRE.MatchString(base) || len(name) > 80 {
		if fifo || isFifo {
			return errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
		return errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// URL returns the queue's URL as seen by the request in ctx.
func (s *Service) URL(ctx context.Context, name string) string {
	host := awsapi.HostFrom(ctx)
	if host == "" {
		host = s.cfg.Listen
	}
	return "http://" + host + "/" + s.cfg.AccountID + "/" + name
}

// nameFromURL returns the queue name of a queue URL (any host; the path is
// /<account-id>/<name>).
func (s *Service) nameFromURL(u string) (string, bool) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	account, name, ok := strings.Cut(strings.TrimPrefix(parsed.Path, "/"), "/")
	if !ok || account != s.cfg.AccountID || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// NameFromArn returns the queue name of a queue ARN of this account and
// region.
func (s *Service) NameFromArn(arn string) (string, bool) {
	name, ok := strings.CutPrefix(arn, "arn:aws:sqs:"+s.cfg.Region+":"+s.cfg.AccountID+":")
	return name, ok && name != "" && !strings.Contains(name, ":")
}

// Get returns the queue named name.
func (s *Service) Get(ctx context.Context, name string) (*Queue, uint64, error) {
	e, err := s.st.Get(ctx, queueKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errNoQueue()
	}
	if err != nil {
		return nil, 0, err
	}
	var q Queue
	if err := json.Unmarshal(e.Value, &q); err != nil {
		return nil, 0, fmt.Errorf("queue record %s: %w", name, err)
	}
	return &q, e.Revision, nil
}

// allQueues returns every queue's record (those that do not decode are
// left out).
func (s *Service) allQueues(ctx context.Context) ([]Queue, error) {
	entries, err := s.st.List(ctx, "queue.")
	if err != nil {
		return nil, err
	}
	out := make([]Queue, 0, len(entries))
	for _, e := range entries {
		var q Queue
		if json.Unmarshal(e.Value, &q) == nil {
			out = append(out, q)
		}
	}
	return out, nil
}

// byURL returns the queue a request's QueueUrl names.
func (s *Service) byURL(ctx context.Context, u *string) (*Queue, uint64, error) {
	if u == nil || *u == "" {
		return nil, 0, errMissing("QueueUrl")
	}
	name, ok := s.nameFromURL(*u)
	if !ok {
		return nil, 0, errNoQueue()
	}
	return s.Get(ctx, name)
}

// update stores a changed queue record, retrying on concurrent changes.
func (s *Service) update(ctx context.Context, name string, change func(*Queue) error) (*Queue, error) {
	for range 10 {
		q, rev, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := change(q); err != nil {
			return nil, err
		}
		q.Modified = time.Now().UTC()
		data, err := json.Marshal(q)
		if err != nil {
			return nil, err
		}
		_, err = s.st.Update(ctx, queueKey(name), data, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return q, err
	}
	return nil, errors.New("queue record keeps changing")
}

// Exists reports whether a queue of this account and region has the ARN,
// and whether it is FIFO, for checks of DeadLetterConfig and targets.
func (s *Service) Exists(ctx context.Context, arn string) (exists, fifo bool, err error) {
	name, ok := s.NameFromArn(arn)
	if !ok {
		return false, false, nil
	}
	q, _, err := s.Get(ctx, name)
	var aerr *awsapi.Error
	if errors.As(err, &aerr) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, q.FIFO(), nil
}
