// Package admin holds the wire types of bridgeport's own API: operations
// AWS does not have (Diagnose, TraceEvent, ListAttempts, PeekMessages; the
// redrive operations' types are in internal/redrive), spoken like AWS
// JSON 1.1 services and signed with SigV4 under the signing name
// "bridgeport", so that remote command-line tools authenticate as the AWS
// CLI does. The server answers in them; the command line and the console
// call with them.
package admin

import "bridgeport/internal/awsapi"

// The signing name and X-Amz-Target prefix of bridgeport's own API.
const (
	SigningName  = "bridgeport"
	TargetPrefix = "Bridgeport"
)

// Finding statuses.
const (
	StatusOK      = "OK"
	StatusWarning = "WARNING"
	StatusProblem = "PROBLEM"
)

// Finding is one check of Diagnose: what was checked, what is wrong (if
// anything) and how to fix it.
type Finding struct {
	Check   string `json:"Check"`
	Target  string `json:"Target,omitempty"`
	Status  string `json:"Status"`
	Message string `json:"Message"`
	Fix     string `json:"Fix,omitempty"`
}

// DiagnoseInput names the rule (and optionally one target) to check.
type DiagnoseInput struct {
	Rule         *string `json:"Rule"`
	EventBusName *string `json:"EventBusName"`
	TargetId     *string `json:"TargetId"`
	// Probe sends each API destination one request as a delivery would (its
	// method, the connection's auth) with a test event as the body, to see
	// the certificate, the answer and its time.
	Probe bool `json:"Probe"`
}

// DiagnoseOutput is the answer of Diagnose.
type DiagnoseOutput struct {
	RuleArn  string    `json:"RuleArn,omitempty"`
	Findings []Finding `json:"Findings"`
	Problems int       `json:"Problems"`
	Warnings int       `json:"Warnings"`
	// Backlogs are the events that wait for each target, as numbers (the
	// backlog finding says the same in words).
	Backlogs []TargetBacklog `json:"Backlogs,omitempty"`
}

// TargetBacklog is what waits for one target: events due for a retry,
// events parked while its destination fails, and when the oldest of them
// was accepted.
type TargetBacklog struct {
	TargetId string       `json:"TargetId"`
	Delayed  int          `json:"Delayed"`
	Parked   int          `json:"Parked"`
	Oldest   *awsapi.Time `json:"Oldest,omitempty"`
}

// Total is every event that waits.
func (b *TargetBacklog) Total() int { return b.Delayed + b.Parked }

// AttemptRecord is one record of the delivery attempt log, as the API
// returns it.
type AttemptRecord struct {
	Time               awsapi.Time  `json:"Time"`
	EventId            string       `json:"EventId"`
	EventBusName       string       `json:"EventBusName"`
	RuleArn            string       `json:"RuleArn"`
	TargetId           string       `json:"TargetId"`
	TargetArn          string       `json:"TargetArn"`
	Attempt            int          `json:"Attempt"`
	DurationMs         float64      `json:"DurationMs"`
	StatusCode         int          `json:"StatusCode,omitempty"`
	ErrorCode          string       `json:"ErrorCode,omitempty"`
	ErrorMessage       string       `json:"ErrorMessage,omitempty"`
	Outcome            string       `json:"Outcome"`
	RetryAt            *awsapi.Time `json:"RetryAt,omitempty"`
	DeadLetterQueueArn string       `json:"DeadLetterQueueArn,omitempty"`
}

// AttemptsOutput is the answer of TraceEvent and ListAttempts.
type AttemptsOutput struct {
	Attempts []AttemptRecord `json:"Attempts"`
}

// TraceEventInput asks for every attempt to deliver one event.
type TraceEventInput struct {
	EventId *string `json:"EventId"`
}

// ListAttemptsInput asks for the attempts of a rule's targets.
type ListAttemptsInput struct {
	Rule         *string      `json:"Rule"`
	EventBusName *string      `json:"EventBusName"`
	TargetId     *string      `json:"TargetId"`
	FailedOnly   bool         `json:"FailedOnly"`
	Since        *awsapi.Time `json:"Since"`
	Limit        *int         `json:"Limit"`
}

// PeekMessagesInput asks for a page of a queue's messages, read without
// being received (bridgeport's own operation: SQS has none).
type PeekMessagesInput struct {
	QueueUrl            *string `json:"QueueUrl"`
	MaxNumberOfMessages *int    `json:"MaxNumberOfMessages"`
	NextToken           *string `json:"NextToken"`
}

// PeekedMessage is a message as PeekMessages returns it: its attributes
// with a string value (a dead letter's six among them).
type PeekedMessage struct {
	MessageId         string            `json:"MessageId"`
	Body              string            `json:"Body"`
	SentTimestamp     awsapi.Time       `json:"SentTimestamp"`
	MessageAttributes map[string]string `json:"MessageAttributes"`
}

// PeekMessagesOutput is a page of messages, oldest first, and the token of
// the next page.
type PeekMessagesOutput struct {
	Messages  []PeekedMessage `json:"Messages"`
	NextToken *string         `json:"NextToken,omitempty"`
}
