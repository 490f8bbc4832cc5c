package eventbus

import (
	"encoding/json"
	"strings"
	"time"

	"bridgeport/internal/store"
)

// Bus is an event bus as stored in the configuration bucket.
type Bus struct {
	Name             string            `json:"name"`
	Arn              string            `json:"arn"`
	Description      *string           `json:"description,omitempty"`
	KmsKeyIdentifier *string           `json:"kmsKeyIdentifier,omitempty"`
	DeadLetterConfig *DeadLetterConfig `json:"deadLetterConfig,omitempty"`
	LogConfig        json.RawMessage   `json:"logConfig,omitempty"`
	// Policy is the bus's resource-based policy (PutPermission).
	Policy   string    `json:"policy,omitempty"`
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
	Tags     []Tag     `json:"tags,omitempty"`
}

// Rule is a rule with its targets, as stored in the configuration bucket.
type Rule struct {
	Name         string  `json:"name"`
	Bus          string  `json:"bus"`
	Arn          string  `json:"arn"`
	EventPattern *string `json:"eventPattern,omitempty"`
	// ScheduleExpression is rate(...) or cron(...); ScheduleSince is when
	// it was set, the start of a rate's countdown.
	ScheduleExpression *string   `json:"scheduleExpression,omitempty"`
	ScheduleSince      time.Time `json:"scheduleSince,omitzero"`
	State              string    `json:"state"`
	Description        *string   `json:"description,omitempty"`
	RoleArn            *string   `json:"roleArn,omitempty"`
	Targets            []Target  `json:"targets,omitempty"`
	Tags               []Tag     `json:"tags,omitempty"`
	Created            time.Time `json:"created"`
	// ManagedBy names the service that manages the rule: set only on the
	// rules of archives, which are never stored as rule records.
	ManagedBy string `json:"managedBy,omitempty"`
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Rule states.
const (
	StateEnabled  = "ENABLED"
	StateDisabled = "DISABLED"
	// StateEnabledCloudTrail also matches CloudTrail management events,
	// which bridgeport never receives; it behaves as ENABLED.
	StateEnabledCloudTrail = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
)

func (r *Rule) enabled() bool { return r.State != StateDisabled }

// Keys of the configuration bucket.
const (
	busPrefix  = "bus."
	rulePrefix = "rule."
)

func busKey(name string) string { return busPrefix + store.Token(name) }

func ruleKey(bus, name string) string { return rulePrefix + store.Token(bus) + "." + store.Token(name) }

// keyKind tells a configuration key's kind by its prefix.
func keyKind(key string) string {
	kind, _, _ := strings.Cut(key, ".")
	return kind
}
