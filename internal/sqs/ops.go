package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// Operations returns the SQS operations by name.
func (s *Service) Operations() map[string]awsapi.JSONOperation {
	return map[string]awsapi.JSONOperation{
		"CreateQueue":                  s.createQueue,
		"GetQueueUrl":                  s.getQueueURL,
		"ListQueues":                   s.listQueues,
		"DeleteQueue":                  s.deleteQueue,
		"GetQueueAttributes":           s.getQueueAttributes,
		"SetQueueAttributes":           s.setQueueAttributes,
		"PurgeQueue":                   s.purgeQueue,
		"TagQueue":                     s.tagQueue,
		"UntagQueue":                   s.untagQueue,
		"ListQueueTags":                s.listQueueTags,
		"SendMessage":                  s.sendMessage,
		"SendMessageBatch":             s.sendMessageBatch,
		"ReceiveMessage":               s.receiveMessage,
		"DeleteMessage":                s.deleteMessage,
		"DeleteMessageBatch":           s.deleteMessageBatch,
		"ChangeMessageVisibility":      s.changeMessageVisibility,
		"ChangeMessageVisibilityBatch": s.changeMessageVisibilityBatch,
		"StartMessageMoveTask":         s.startMessageMoveTask,
		"ListMessageMoveTasks":         s.listMessageMoveTasks,
		"CancelMessageMoveTask":        s.cancelMessageMoveTask,
		"ListDeadLetterSourceQueues":   s.listDeadLetterSourceQueues,
		"AddPermission":                s.addPermission,
		"RemovePermission":             s.removePermission,
	}
}

type queueURLInput struct {
	QueueUrl *string `json:"QueueUrl"`
}

type queueURLOutput struct {
	QueueUrl string `json:"QueueUrl"`
}

type empty struct{}

func (s *Service) createQueue(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueName  *string           `json:"QueueName"`
		Attributes map[string]string `json:"Attributes"`
		Tags       map[string]string `json:"tags"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.QueueName == nil {
		return nil, errMissing("QueueName")
	}
	name := *in.QueueName
	fifo := in.Attributes["FifoQueue"] == "true"
	if err := checkName(name, fifo || strings.HasSuffix(name, ".fifo")); err != nil {
		return nil, err
	}
	if strings.HasSuffix(name, ".fifo") && !fifo {
		if v, ok := in.Attributes["FifoQueue"]; ok && v != "true" {
			return nil, errAttributeValue("FifoQueue")
		}
		// A .fifo name without FifoQueue is refused by SQS.
		return nil, errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
	}
	if err := checkAttrs(in.Attributes, fifo, true); err != nil {
		return nil, err
	}
	if in.Attributes["FifoQueue"] == "false" {
		delete(in.Attributes, "FifoQueue")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	q := Queue{Name: name, ID: newID(), Created: now, Modified: now, Attrs: in.Attributes, Tags: in.Tags}
	if q.Attrs == nil {
		q.Attrs = map[string]string{}
	}
	// The consumer first, so that a queue record always has one.
	if err := s.st.OpenQueue(ctx, q.ID); err != nil {
		return nil, err
	}
	data, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	if _, err := s.st.Create(ctx, queueKey(name), data); errors.Is(err, store.ErrExists) {
		_ = s.st.RemoveQueue(ctx, q.ID)
		existing, _, gerr := s.Get(ctx, name)
		if gerr != nil {
			return nil, gerr
		}
		// Creating an existing queue with the same attributes returns it.
		for k, v := range in.Attributes {
			if existing.attr(k) != v {
				return nil, sqsError("QueueNameExists", "QueueAlreadyExists",
					"A queue already exists with the same name and a different value for attribute %s", k)
			}
		}
		return queueURLOutput{s.URL(ctx, name)}, nil
	} else if err != nil {
		_ = s.st.RemoveQueue(ctx, q.ID)
		return nil, err
	}
	return queueURLOutput{s.URL(ctx, name)}, nil
}

func (s *Service) getQueueURL(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueName              *string `json:"QueueName"`
		QueueOwnerAWSAccountId *string `json:"QueueOwnerAWSAccountId"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.QueueName == nil {
		return nil, errMissing("QueueName")
	}
	if in.QueueOwnerAWSAccountId != nil && *in.QueueOwnerAWSAccountId != s.cfg.AccountID {
		return nil, errNoQueue()
	}
	if _, _, err := s.Get(ctx, *in.QueueName); err != nil {
		return nil, err
	}
	return queueURLOutput{s.URL(ctx, *in.QueueName)}, nil
}

func (s *Service) listQueues(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueNamePrefix *string `json:"QueueNamePrefix"`
		NextToken       *string `json:"NextToken"`
		MaxResults      *int    `json:"MaxResults"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, errParameterValue(*in.MaxResults, "MaxResults", "MaxResults must be an integer between 1 and 1000.")
	}
	if in.NextToken != nil && in.MaxResults == nil {
		return nil, errInvalidParameter("MaxResults is a mandatory parameter when you provide a value for NextToken.")
	}
	queues, err := s.allQueues(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, q := range queues {
		if in.QueueNamePrefix == nil || strings.HasPrefix(q.Name, *in.QueueNamePrefix) {
			names = append(names, q.Name)
		}
	}
	slices.Sort(names)
	if in.NextToken != nil {
		i, _ := slices.BinarySearch(names, *in.NextToken)
		names = names[i:]
	}
	var out struct {
		QueueUrls []string `json:"QueueUrls,omitempty"`
		NextToken string   `json:"NextToken,omitempty"`
	}
	limit := 1000
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	if len(names) > limit {
		out.NextToken = names[limit]
		names = names[:limit]
	}
	for _, n := range names {
		out.QueueUrls = append(out.QueueUrls, s.URL(ctx, n))
	}
	return out, nil
}

func (s *Service) deleteQueue(ctx context.Context, body []byte) (any, error) {
	var in queueURLInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, rev, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	// The record goes first, at the revision read; a concurrent change
	// means reading it again. Messages go once no record names them.
	for {
		_, err := s.st.Delete(ctx, queueKey(q.Name), rev)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		if q, rev, err = s.Get(ctx, q.Name); err != nil {
			var aerr *awsapi.Error
			if errors.As(err, &aerr) {
				return empty{}, nil // deleted meanwhile
			}
			return nil, err
		}
	}
	if err := s.st.RemoveQueue(ctx, q.ID); err != nil {
		s.log.WarnContext(ctx, "remove deleted queue's messages", "queue", q.Name, "error", err)
	}
	return empty{}, nil
}

// readOnly lists the attributes SQS computes.
var readOnly = []string{"QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
	"ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp"}

func (s *Service) getQueueAttributes(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl       *string  `json:"QueueUrl"`
		AttributeNames []string `json:"AttributeNames"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	all := false
	for _, n := range in.AttributeNames {
		_, set := settable[n]
		switch {
		case n == "All":
			all = true
		case set || slices.Contains(readOnly, n):
			want[n] = true
		default:
			return nil, errAttributeName(n)
		}
	}
	attrs := map[string]string{}
	add := func(name, value string) {
		if all || want[name] {
			attrs[name] = value
		}
	}
	add("QueueArn", s.Arn(q.Name))
	add("CreatedTimestamp", strconv.FormatInt(q.Created.Unix(), 10))
	add("LastModifiedTimestamp", strconv.FormatInt(q.Modified.Unix(), 10))
	if all || want["ApproximateNumberOfMessages"] || want["ApproximateNumberOfMessagesNotVisible"] || want["ApproximateNumberOfMessagesDelayed"] {
		visible, inFlight, delayed, err := s.st.QueueCounts(ctx, q.ID)
		if err != nil {
			return nil, err
		}
		add("ApproximateNumberOfMessages", strconv.Itoa(visible))
		add("ApproximateNumberOfMessagesNotVisible", strconv.Itoa(inFlight))
		add("ApproximateNumberOfMessagesDelayed", strconv.Itoa(delayed))
	}
	for name := range defaults {
		add(name, q.attr(name))
	}
	for name, v := range q.Attrs {
		add(name, v)
	}
	var out struct {
		Attributes map[string]string `json:"Attributes,omitempty"`
	}
	out.Attributes = attrs
	return out, nil
}

func (s *Service) setQueueAttributes(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl   *string           `json:"QueueUrl"`
		Attributes map[string]string `json:"Attributes"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Attributes == nil {
		return nil, errMissing("Attributes")
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if err := checkAttrs(in.Attributes, q.FIFO(), false); err != nil {
		return nil, err
	}
	_, err = s.update(ctx, q.Name, func(q *Queue) error {
		for k, v := range in.Attributes {
			if v == "" && (k == "Policy" || k == "RedrivePolicy" || k == "RedriveAllowPolicy") {
				delete(q.Attrs, k)
				continue
			}
			q.Attrs[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (s *Service) purgeQueue(ctx context.Context, body []byte) (any, error) {
	var in queueURLInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	q, err = s.update(ctx, q.Name, func(q *Queue) error {
		if time.Since(q.Purged) < time.Minute {
			return sqsError("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress",
				"Only one PurgeQueue operation on %s is allowed every 60 seconds.", q.Name)
		}
		q.Purged = time.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return empty{}, s.st.PurgeQueue(ctx, q.ID)
}

var tagKeyRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return errInvalidParameter("Too many tags added for queue. Max allowed: 50")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 || !tagKeyRE.MatchString(k) || strings.HasPrefix(k, "aws:") {
			return errInvalidParameter("Tag key %q is not valid.", k)
		}
	}
	return nil
}

func (s *Service) tagQueue(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl *string           `json:"QueueUrl"`
		Tags     map[string]string `json:"Tags"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Tags == nil {
		return nil, errMissing("Tags")
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	_, err = s.update(ctx, q.Name, func(q *Queue) error {
		merged := maps.Clone(q.Tags)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, in.Tags)
		if err := checkTags(merged); err != nil {
			return err
		}
		q.Tags = merged
		return nil
	})
	if err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (s *Service) untagQueue(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl *string  `json:"QueueUrl"`
		TagKeys  []string `json:"TagKeys"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.TagKeys == nil {
		return nil, errMissing("TagKeys")
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	_, err = s.update(ctx, q.Name, func(q *Queue) error {
		for _, k := range in.TagKeys {
			delete(q.Tags, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (s *Service) listQueueTags(ctx context.Context, body []byte) (any, error) {
	var in queueURLInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	var out struct {
		Tags map[string]string `json:"Tags,omitempty"`
	}
	out.Tags = q.Tags
	return out, nil
}

// Messages.

// sendEntry is a message to send, from SendMessage or a batch entry.
type sendEntry struct {
	Id                      *string              `json:"Id"`
	MessageBody             *string              `json:"MessageBody"`
	DelaySeconds            *int                 `json:"DelaySeconds"`
	MessageAttributes       map[string]Attribute `json:"MessageAttributes"`
	MessageSystemAttributes map[string]Attribute `json:"MessageSystemAttributes"`
	MessageDeduplicationId  *string              `json:"MessageDeduplicationId"`
	MessageGroupId          *string              `json:"MessageGroupId"`
}

type sendResult struct {
	Id                     string `json:"Id,omitempty"`
	MessageId              string `json:"MessageId"`
	MD5OfMessageBody       string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes string `json:"MD5OfMessageAttributes,omitempty"`
	SequenceNumber         string `json:"SequenceNumber,omitempty"`
}

// stored is a message as kept in the store.
type stored struct {
	Body     string               `json:"b"`
	Attrs    map[string]Attribute `json:"a,omitempty"`
	MD5Body  string               `json:"mb"`
	MD5Attrs string               `json:"ma,omitempty"`
	Sender   string               `json:"s,omitempty"`
	Group    string               `json:"g,omitempty"`
	Dedupe   string               `json:"d,omitempty"`
}

func (s *Service) sendMessage(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl *string `json:"QueueUrl"`
		sendEntry
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	res, err := s.send(ctx, q, &in.sendEntry, sender(ctx), nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func sender(ctx context.Context) string {
	id, _ := awsapi.IdentityFrom(ctx)
	return id.AccessKeyID
}

type batchError struct {
	Id          string `json:"Id"`
	SenderFault bool   `json:"SenderFault"`
	Code        string `json:"Code"`
	Message     string `json:"Message"`
}

func toBatchError(id string, err error) (batchError, error) {
	var aerr *awsapi.Error
	if !errors.As(err, &aerr) {
		return batchError{}, err
	}
	code := aerr.QueryCode
	if code == "" {
		code = aerr.Code
	}
	return batchError{Id: id, SenderFault: aerr.HTTPStatus() < 500, Code: code, Message: aerr.Message}, nil
}

var batchIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// checkBatch checks a batch's entry ids.
func checkBatch(ids []*string, entry string) error {
	if len(ids) == 0 {
		return errEmptyBatch(entry)
	}
	if len(ids) > 10 {
		return errTooManyEntries(len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == nil {
			return errMissing(entry + ".Id")
		}
		if !batchIDRE.MatchString(*id) {
			return errBadEntryID()
		}
		if seen[*id] {
			return errIDsNotDistinct(*id)
		}
		seen[*id] = true
	}
	return nil
}

func (s *Service) sendMessageBatch(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl *string     `json:"QueueUrl"`
		Entries  []sendEntry `json:"Entries"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]*string, len(in.Entries))
	total := 0
	for i := range in.Entries {
		ids[i] = in.Entries[i].Id
		total += in.Entries[i].size()
	}
	if err := checkBatch(ids, "SendMessageBatchRequestEntry"); err != nil {
		return nil, err
	}
	// Each message is held to the queue's MaximumMessageSize; the batch
	// to SQS's 1 MiB.
	if total > maxBatchBytes {
		return nil, sqsError("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
			"Batch requests cannot be longer than %d bytes. You have sent %d bytes.", maxBatchBytes, total)
	}
	out := struct {
		Successful []sendResult `json:"Successful"`
		Failed     []batchError `json:"Failed"`
	}{Successful: []sendResult{}, Failed: []batchError{}}
	for i := range in.Entries {
		e := &in.Entries[i]
		res, err := s.send(ctx, q, e, sender(ctx), nil)
		if err != nil {
			be, err := toBatchError(*e.Id, err)
			if err != nil {
				return nil, err
			}
			out.Failed = append(out.Failed, be)
			continue
		}
		res.Id = *e.Id
		out.Successful = append(out.Successful, *res)
	}
	return out, nil
}

// maxBatchBytes is SQS's limit on the sum of the messages of a batch.
const maxBatchBytes = 1 << 20

// size is the size SQS counts against the message size limit: the body
// and each attribute's name, type and value.
func (e *sendEntry) size() int {
	n := 0
	if e.MessageBody != nil {
		n += len(*e.MessageBody)
	}
	for name, a := range e.MessageAttributes {
		n += len(name) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			n += len(*a.StringValue)
		}
	}
	return n
}

const allowedChars = "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"

func checkChars(s string) error {
	for _, r := range s {
		if r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000 {
			continue
		}
		return sqsError("InvalidMessageContents", "InvalidMessageContents",
			"Invalid binary character '#x%X' was found in the message body, the set of allowed characters is %s", r, allowedChars)
	}
	return nil
}

var attrNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)

func isBinary(dataType string) bool {
	return dataType == "Binary" || strings.HasPrefix(dataType, "Binary.")
}

func checkAttributes(attrs map[string]Attribute) error {
	if len(attrs) > 10 {
		return errInvalidParameter("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs))
	}
	for name, a := range attrs {
		lower := strings.ToLower(name)
		if !attrNameRE.MatchString(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") ||
			strings.Contains(name, "..") || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
			return errInvalidParameter("Message (user) attribute '%s' is invalid. The attribute name can contain only alphanumeric characters, hyphens, underscores and periods.", name)
		}
		base, _, _ := strings.Cut(a.DataType, ".")
		if a.DataType == "" {
			return errInvalidParameter("The message attribute '%s' must contain non-empty message attribute type.", name)
		}
		switch base {
		case "String", "Number":
			if a.StringValue == nil || *a.StringValue == "" {
				return errInvalidParameter("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, a.DataType)
			}
			if err := checkChars(*a.StringValue); err != nil {
				return err
			}
			if base == "Number" {
				if _, err := strconv.ParseFloat(*a.StringValue, 64); err != nil {
					return errInvalidParameter("Can't cast the value of message (user) attribute '%s' to a number.", name)
				}
			}
		case "Binary":
			if len(a.BinaryValue) == 0 {
				return errInvalidParameter("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, a.DataType)
			}
		default:
			return errInvalidParameter("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
		}
	}
	return nil
}

// send validates and stores one message. meta is stored with it for
// bridgeport's own use (dead-letter provenance).
func (s *Service) send(ctx context.Context, q *Queue, e *sendEntry, from string, meta map[string]string) (*sendResult, error) {
	if e.MessageBody == nil || *e.MessageBody == "" {
		return nil, errMissing("MessageBody")
	}
	if err := checkChars(*e.MessageBody); err != nil {
		return nil, err
	}
	if err := checkAttributes(e.MessageAttributes); err != nil {
		return nil, err
	}
	if size := e.size(); size > q.maxSize() {
		return nil, errInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.maxSize())
	}
	delay := q.seconds("DelaySeconds")
	if e.DelaySeconds != nil {
		if q.FIFO() {
			return nil, errParameterValue(*e.DelaySeconds, "DelaySeconds", "The request include parameter that is not valid for this queue type.")
		}
		if *e.DelaySeconds < 0 || *e.DelaySeconds > 900 {
			return nil, errParameterValue(*e.DelaySeconds, "DelaySeconds", "DelaySeconds must be >= 0 and <= 900.")
		}
		delay = time.Duration(*e.DelaySeconds) * time.Second
	}
	m := stored{Body: *e.MessageBody, Attrs: e.MessageAttributes, MD5Body: md5Hex([]byte(*e.MessageBody)),
		MD5Attrs: attributesMD5(e.MessageAttributes), Sender: from}
	id := newUUID()
	dedupe := ""
	if q.FIFO() {
		if e.MessageGroupId == nil || *e.MessageGroupId == "" {
			return nil, errMissing("MessageGroupId")
		}
		m.Group = *e.MessageGroupId
		switch {
		case e.MessageDeduplicationId != nil && *e.MessageDeduplicationId != "":
			m.Dedupe = *e.MessageDeduplicationId
		case q.attr("ContentBasedDeduplication") == "true":
			m.Dedupe = md5Hex([]byte(m.Body))
		default:
			return nil, errInvalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
		dedupe = "fifo/" + m.Dedupe
	} else if e.MessageGroupId != nil {
		m.Group = *e.MessageGroupId
	}
	data := m.encode()
	if d := meta[metaDedupe]; d != "" {
		dedupe = d
		meta = maps.Clone(meta)
		delete(meta, metaDedupe)
	}
	seq, _, err := s.st.SendToQueue(ctx, q.ID, store.QueueMessage{ID: id, DedupeID: dedupe, Data: data, Delay: delay,
		Retention: q.seconds("MessageRetentionPeriod"), Meta: meta})
	if err != nil {
		return nil, err
	}
	res := &sendResult{MessageId: id, MD5OfMessageBody: m.MD5Body, MD5OfMessageAttributes: m.MD5Attrs}
	if q.FIFO() {
		res.SequenceNumber = fmt.Sprintf("%020d", seq)
	}
	return res, nil
}

func newUUID() string {
	h := newID() + newID()[:8]
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

type message struct {
	MessageId              string               `json:"MessageId"`
	ReceiptHandle          string               `json:"ReceiptHandle"`
	MD5OfBody              string               `json:"MD5OfBody"`
	Body                   string               `json:"Body"`
	Attributes             map[string]string    `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string               `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]Attribute `json:"MessageAttributes,omitempty"`
}

var systemAttributes = []string{"SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
	"MessageDeduplicationId", "MessageGroupId", "SequenceNumber", "AWSTraceHeader", "DeadLetterQueueSourceArn"}

func (s *Service) receiveMessage(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl                    *string  `json:"QueueUrl"`
		AttributeNames              []string `json:"AttributeNames"`
		MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
		MessageAttributeNames       []string `json:"MessageAttributeNames"`
		MaxNumberOfMessages         *int     `json:"MaxNumberOfMessages"`
		VisibilityTimeout           *int     `json:"VisibilityTimeout"`
		WaitTimeSeconds             *int     `json:"WaitTimeSeconds"`
		ReceiveRequestAttemptId     *string  `json:"ReceiveRequestAttemptId"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	o := store.ReceiveOptions{Max: 1, Visibility: q.seconds("VisibilityTimeout"), Wait: q.seconds("ReceiveMessageWaitTimeSeconds"),
		Retention: q.seconds("MessageRetentionPeriod")}
	if in.MaxNumberOfMessages != nil {
		if n := *in.MaxNumberOfMessages; n < 1 || n > 10 {
			return nil, errParameterValue(n, "MaxNumberOfMessages", "Must be between 1 and 10, if provided.")
		}
		o.Max = *in.MaxNumberOfMessages
	}
	if in.VisibilityTimeout != nil {
		if v := *in.VisibilityTimeout; v < 0 || v > 43200 {
			return nil, errParameterValue(v, "VisibilityTimeout", "Must be >= 0 and <= 43200, if provided.")
		}
		o.Visibility = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	if in.WaitTimeSeconds != nil {
		if w := *in.WaitTimeSeconds; w < 0 || w > 20 {
			return nil, errParameterValue(w, "WaitTimeSeconds", "Must be >= 0 and <= 20, if provided.")
		}
		o.Wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	sysNames := append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...)
	for _, n := range sysNames {
		if n != "All" && !slices.Contains(systemAttributes, n) && !slices.Contains(readOnly, n) {
			if _, ok := settable[n]; !ok {
				return nil, errAttributeName(n)
			}
		}
	}
	got, err := s.st.Receive(ctx, q.ID, o)
	if err != nil && len(got) == 0 {
		return nil, err
	}
	var out struct {
		Messages []message `json:"Messages,omitempty"`
	}
	dlq, maxCount, redrive := parseRedrive(q.Attrs["RedrivePolicy"])
	for _, r := range got {
		m, err := decodeStored(r.Data)
		if err != nil {
			s.log.ErrorContext(ctx, "unreadable queue message", "queue", q.Name, "seq", r.Seq, "error", err)
			continue
		}
		if redrive && r.ReceiveCount > maxCount && s.moveToDeadLetter(ctx, q, dlq, r, &m) {
			continue
		}
		msg := message{MessageId: r.ID, ReceiptHandle: r.Handle, MD5OfBody: m.MD5Body, Body: m.Body}
		msg.Attributes = systemAttrs(sysNames, q, &m, r)
		msg.MessageAttributes = selectAttributes(m.Attrs, in.MessageAttributeNames)
		msg.MD5OfMessageAttributes = attributesMD5(msg.MessageAttributes)
		out.Messages = append(out.Messages, msg)
	}
	return out, nil
}

// moveToDeadLetter moves a message received more than its queue's
// RedrivePolicy allows to the policy's dead-letter queue: stored there
// first (a repeat after a crash is a duplicate), then deleted here. It
// reports whether the message moved; if the dead-letter queue is missing,
// the message stays and is returned.
func (s *Service) moveToDeadLetter(ctx context.Context, q *Queue, dlqArn string, r store.Received, m *stored) bool {
	name, ok := s.NameFromArn(dlqArn)
	if !ok {
		return false
	}
	dlq, _, err := s.Get(ctx, name)
	if err != nil {
		s.log.WarnContext(ctx, "redrive policy names a queue that does not exist", "queue", q.Name, "dead_letter_queue", dlqArn)
		return false
	}
	meta := map[string]string{metaSource: s.Arn(q.Name)}
	for k, v := range r.Meta {
		if strings.HasPrefix(k, "Bp-Dl-") {
			meta[k] = v // what redrive needs of an EventBridge dead letter
		}
	}
	if _, _, err := s.st.SendToQueue(ctx, dlq.ID, store.QueueMessage{ID: r.ID, DedupeID: "moved/" + r.ID, Data: m.encode(),
		Retention: dlq.seconds("MessageRetentionPeriod"), Meta: meta}); err != nil {
		s.log.WarnContext(ctx, "move to dead-letter queue", "queue", q.Name, "error", err)
		return false
	}
	if err := s.st.DeleteReceived(ctx, q.ID, r.Handle); err != nil && !errors.Is(err, store.ErrStaleReceipt) {
		s.log.WarnContext(ctx, "delete moved message", "queue", q.Name, "error", err)
	}
	return true
}

func systemAttrs(names []string, q *Queue, m *stored, r store.Received) map[string]string {
	all := slices.Contains(names, "All")
	out := map[string]string{}
	add := func(name, v string) {
		if v != "" && (all || slices.Contains(names, name)) {
			out[name] = v
		}
	}
	add("SenderId", m.Sender)
	add("SentTimestamp", strconv.FormatInt(r.Sent.UnixMilli(), 10))
	add("ApproximateReceiveCount", strconv.Itoa(r.ReceiveCount))
	add("DeadLetterQueueSourceArn", r.Meta[metaSource])
	if q.FIFO() {
		add("MessageGroupId", m.Group)
		add("MessageDeduplicationId", m.Dedupe)
		add("SequenceNumber", fmt.Sprintf("%020d", r.Seq))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// selectAttributes returns the attributes the request names: "All", ".*",
// names, or prefixes written "prefix.*".
func selectAttributes(attrs map[string]Attribute, names []string) map[string]Attribute {
	if len(attrs) == 0 || len(names) == 0 {
		return nil
	}
	out := map[string]Attribute{}
	for name, a := range attrs {
		for _, n := range names {
			prefix, isPrefix := strings.CutSuffix(n, ".*")
			if n == "All" || n == ".*" || n == name || (isPrefix && strings.HasPrefix(name, prefix+".")) {
				out[name] = a
				break
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s *Service) deleteMessage(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl      *string `json:"QueueUrl"`
		ReceiptHandle *string `json:"ReceiptHandle"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == nil {
		return nil, errMissing("ReceiptHandle")
	}
	return empty{}, s.deleteOne(ctx, q, *in.ReceiptHandle)
}

// deleteOne deletes by receipt handle. A handle from an earlier receive
// succeeds and deletes nothing, as SQS documents.
func (s *Service) deleteOne(ctx context.Context, q *Queue, handle string) error {
	err := s.st.DeleteReceived(ctx, q.ID, handle)
	switch {
	case errors.Is(err, store.ErrBadReceipt):
		return errBadReceipt(handle)
	case errors.Is(err, store.ErrStaleReceipt):
		return nil
	}
	return err
}

// deleteEntry is an entry of DeleteMessageBatch; visibilityEntry one of
// ChangeMessageVisibilityBatch.
type deleteEntry struct {
	Id            *string `json:"Id"`
	ReceiptHandle *string `json:"ReceiptHandle"`
}

type visibilityEntry struct {
	Id                *string `json:"Id"`
	ReceiptHandle     *string `json:"ReceiptHandle"`
	VisibilityTimeout *int    `json:"VisibilityTimeout"`
}

// runBatch runs a batch operation on receipt handles: it decodes the
// request, finds the queue, checks the entry ids (id returns an entry's),
// and runs each entry, sorting them into Successful and Failed.
func runBatch[E any](ctx context.Context, s *Service, body []byte, entry string, id func(*E) *string, run func(*Queue, *E) error) (any, error) {
	var in struct {
		QueueUrl *string `json:"QueueUrl"`
		Entries  []E     `json:"Entries"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]*string, len(in.Entries))
	for i := range in.Entries {
		ids[i] = id(&in.Entries[i])
	}
	if err := checkBatch(ids, entry); err != nil {
		return nil, err
	}
	return batchResults(len(in.Entries), func(i int) (string, error) {
		return *ids[i], run(q, &in.Entries[i])
	})
}

func (s *Service) deleteMessageBatch(ctx context.Context, body []byte) (any, error) {
	return runBatch(ctx, s, body, "DeleteMessageBatchRequestEntry", func(e *deleteEntry) *string { return e.Id },
		func(q *Queue, e *deleteEntry) error {
			if e.ReceiptHandle == nil {
				return errMissing("ReceiptHandle")
			}
			return s.deleteOne(ctx, q, *e.ReceiptHandle)
		})
}

type batchID struct {
	Id string `json:"Id"`
}

// batchResults runs n entries and sorts them into Successful and Failed.
func batchResults(n int, run func(i int) (string, error)) (any, error) {
	out := struct {
		Successful []batchID    `json:"Successful"`
		Failed     []batchError `json:"Failed"`
	}{Successful: []batchID{}, Failed: []batchError{}}
	for i := range n {
		id, err := run(i)
		if err != nil {
			be, err := toBatchError(id, err)
			if err != nil {
				return nil, err
			}
			out.Failed = append(out.Failed, be)
			continue
		}
		out.Successful = append(out.Successful, batchID{id})
	}
	return out, nil
}

func (s *Service) changeMessageVisibility(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl          *string `json:"QueueUrl"`
		ReceiptHandle     *string `json:"ReceiptHandle"`
		VisibilityTimeout *int    `json:"VisibilityTimeout"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return empty{}, s.changeOne(ctx, q, in.ReceiptHandle, in.VisibilityTimeout)
}

func (s *Service) changeOne(ctx context.Context, q *Queue, handle *string, timeout *int) error {
	if handle == nil {
		return errMissing("ReceiptHandle")
	}
	if timeout == nil {
		return errMissing("VisibilityTimeout")
	}
	if v := *timeout; v < 0 || v > 43200 {
		return errParameterValue(v, "VisibilityTimeout", "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]")
	}
	err := s.st.ChangeVisibility(ctx, q.ID, *handle, time.Duration(*timeout)*time.Second)
	switch {
	case errors.Is(err, store.ErrBadReceipt):
		return errBadReceipt(*handle)
	case errors.Is(err, store.ErrStaleReceipt):
		return errNotInflight()
	}
	return err
}

func (s *Service) changeMessageVisibilityBatch(ctx context.Context, body []byte) (any, error) {
	return runBatch(ctx, s, body, "ChangeMessageVisibilityBatchRequestEntry", func(e *visibilityEntry) *string { return e.Id },
		func(q *Queue, e *visibilityEntry) error {
			return s.changeOne(ctx, q, e.ReceiptHandle, e.VisibilityTimeout)
		})
}
