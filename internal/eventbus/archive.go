package eventbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/pattern"
	"bridgeport/internal/store"
)

// Archive is an archive as stored in the configuration bucket. Its events
// are in a stream of their own (store.CreateArchive), named by ID, a
// random id, so that an archive deleted and created again under the same
// name never sees the old one's events.
//
// The archive's managed rule, Events-Archive-<name> on its bus, is not a
// record of its own: every node derives it from this record
// (managedRule), so the archive and its rule are created, changed and
// deleted together, in one write.
type Archive struct {
	Name             string    `json:"name"`
	Arn              string    `json:"arn"`
	ID               string    `json:"id"`
	Bus              string    `json:"bus"`
	BusArn           string    `json:"busArn"`
	Description      *string   `json:"description,omitempty"`
	EventPattern     *string   `json:"eventPattern,omitempty"`
	RetentionDays    int       `json:"retentionDays"`
	KmsKeyIdentifier *string   `json:"kmsKeyIdentifier,omitempty"`
	State            string    `json:"state"`
	StateReason      *string   `json:"stateReason,omitempty"`
	Created          time.Time `json:"created"`
	// Detached says that the managed rule's target ("targets") or the
	// rule itself ("rule") was removed with Force; the archive then
	// receives nothing until UpdateArchive attaches it again.
	Detached string `json:"detached,omitempty"`
}

const (
	archivePrefix = "archive."
	// ManagedBy is what DescribeRule and ListRules show for an archive's
	// rule; the value EventBridge uses for archives, as reported by
	// emulators and tools that recognise archive rules (UNVERIFIED).
	archiveManagedBy  = "prod.vhs.events.aws.internal"
	archiveRulePrefix = "Events-Archive-"
	archiveNameRE     = `[\.\-_A-Za-z0-9]+`

	ArchiveEnabled  = "ENABLED"
	ArchiveDisabled = "DISABLED"
)

var (
	archiveNameMatch = regexp.MustCompile(`^` + archiveNameRE + `$`)
	// The model's EventBusArn and ArchiveArn pattern.
	arnPattern      = `^arn:aws([a-z]|\-)*:events:([a-z]|\d|\-)*:([0-9]{12})?:.+\/.+$`
	arnPatternMatch = regexp.MustCompile(arnPattern)
	archiveStates   = []string{"ENABLED", "DISABLED", "CREATING", "UPDATING", "CREATE_FAILED", "UPDATE_FAILED"}
)

func archiveKey(name string) string { return archivePrefix + store.Token(name) }

func (a arns) archive(name string) string { return a.prefix() + "archive/" + name }

// archiveName returns the archive an archive ARN of this account and
// region names.
func (a arns) archiveName(arn string) (string, bool) {
	name, ok := strings.CutPrefix(arn, a.prefix()+"archive/")
	return name, ok && name != ""
}

// managedRule is the rule through which the archive receives its bus's
// events: the archive's pattern (all events without one) and never a
// replayed event, with the archive as its one target. ok is false when the
// rule was deleted with Force.
func (a *Archive) managedRule(arns arns) (Rule, bool) {
	if a.Detached == "rule" {
		return Rule{}, false
	}
	name := archiveRulePrefix + a.Name
	p := archivePattern(a.EventPattern)
	r := Rule{Name: name, Bus: a.Bus, Arn: arns.rule(a.Bus, name), EventPattern: &p, State: StateEnabled,
		ManagedBy: archiveManagedBy, Created: a.Created}
	if a.Detached == "" {
		r.Targets = []Target{{Id: name, Arn: a.Arn}}
	}
	return r, true
}

// archivePattern adds the condition that keeps replayed events out to an
// archive's pattern. The added member comes last, so it wins over a
// replay-name member of the archive's own (the last of repeated keys
// counts).
func archivePattern(p *string) string {
	const notReplayed = `"replay-name":[{"exists":false}]`
	if p == nil {
		return "{" + notReplayed + "}"
	}
	s := strings.TrimSpace(*p)
	body := strings.TrimSpace(strings.TrimSuffix(s, "}"))
	if body == "{" {
		return "{" + notReplayed + "}"
	}
	return body + "," + notReplayed + "}"
}

type archiveInput struct {
	ArchiveName      *string `json:"ArchiveName"`
	EventSourceArn   *string `json:"EventSourceArn"`
	Description      *string `json:"Description"`
	EventPattern     *string `json:"EventPattern"`
	RetentionDays    *int    `json:"RetentionDays"`
	KmsKeyIdentifier *string `json:"KmsKeyIdentifier"`
	NamePrefix       *string `json:"NamePrefix"`
	State            *string `json:"State"`
	NextToken        *string `json:"NextToken"`
	Limit            *int    `json:"Limit"`
}

// validateName checks a resource name against its model's constraints:
// present when required, 1 to max characters, matching re (whose text is
// pattern).
func validateName(v *awsapi.Violations, name *string, path string, required bool, max int, re *regexp.Regexp, pattern string) {
	switch {
	case name == nil:
		if required {
			v.Add(nil, path, awsapi.MustNotBeNull)
		}
	case len(*name) < 1:
		v.Add(*name, path, awsapi.MinLen(1))
	case len(*name) > max:
		v.Add(*name, path, awsapi.MaxLen(max))
	case !re.MatchString(*name):
		v.Add(*name, path, awsapi.MatchPattern(pattern))
	}
}

func validateArchiveName(v *awsapi.Violations, name *string, path string, required bool) {
	validateName(v, name, path, required, 48, archiveNameMatch, archiveNameRE)
}

func validateEventSourceArn(v *awsapi.Violations, arn *string, required bool) {
	switch {
	case arn == nil:
		if required {
			v.Add(nil, "eventSourceArn", awsapi.MustNotBeNull)
		}
	case len(*arn) < 1:
		v.Add(*arn, "eventSourceArn", awsapi.MinLen(1))
	case len(*arn) > 1600:
		v.Add(*arn, "eventSourceArn", awsapi.MaxLen(1600))
	case !arnPatternMatch.MatchString(*arn):
		v.Add(*arn, "eventSourceArn", awsapi.MatchPattern(arnPattern))
	}
}

// validateArchiveFields checks the members CreateArchive and UpdateArchive
// share.
func validateArchiveFields(v *awsapi.Violations, in *archiveInput) {
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	if in.EventPattern != nil && len(*in.EventPattern) > pattern.APIMaxLength {
		v.Add(*in.EventPattern, "eventPattern", awsapi.MaxLen(pattern.APIMaxLength))
	}
	if in.RetentionDays != nil && *in.RetentionDays < 0 {
		v.Add(*in.RetentionDays, "retentionDays", awsapi.MinValue(0))
	}
	if in.KmsKeyIdentifier != nil && len(*in.KmsKeyIdentifier) > 2048 {
		v.Add(*in.KmsKeyIdentifier, "kmsKeyIdentifier", awsapi.MaxLen(2048))
	}
}

// archivePatternError compiles an archive's pattern as PutRule does.
func (s *Service) archivePatternError(p *string) error {
	if p == nil {
		return nil
	}
	if _, err := pattern.CompileWithLimits(*p, pattern.Limits{MaxLength: s.quotas.PatternSize}); err != nil {
		var perr *pattern.Error
		if errors.As(err, &perr) {
			return &awsapi.Error{Code: awsapi.CodeInvalidPattern, Message: perr.Error()}
		}
		return err
	}
	return nil
}

func notFoundArchive(name string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeNotFound, "Archive %s does not exist.", name)
}

// retention is an archive's retention as a stream's MaxAge; 0 keeps
// events for ever.
func retention(days int) time.Duration {
	return time.Duration(days) * 24 * time.Hour
}

func (s *Service) createArchive(ctx context.Context, body []byte) (any, error) {
	var in archiveInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateArchiveName(&v, in.ArchiveName, "archiveName", true)
	validateEventSourceArn(&v, in.EventSourceArn, true)
	validateArchiveFields(&v, &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	bus, ok := s.arns.busName(in.EventSourceArn)
	if !ok {
		return nil, notFoundBus(lastSegment(*in.EventSourceArn))
	}
	if _, _, ok := s.reg.getBus(bus); !ok {
		return nil, notFoundBus(bus)
	}
	if err := s.archivePatternError(in.EventPattern); err != nil {
		return nil, err
	}
	name := *in.ArchiveName
	if _, _, ok := s.reg.getArchive(name); ok {
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Archive %s already exists.", name)
	}
	if r, _, ok := s.reg.getRule(bus, archiveRulePrefix+name); ok && r.ManagedBy == "" {
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Rule %s already exists on EventBus %s.", r.Name, bus)
	}
	if len(s.reg.listArchives()) >= s.quotas.Archives {
		return nil, limitExceeded()
	}
	days := 0
	if in.RetentionDays != nil {
		days = *in.RetentionDays
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	a := Archive{Name: name, Arn: s.arns.archive(name), ID: hex.EncodeToString(idb[:]), Bus: bus, BusArn: s.arns.bus(bus),
		Description: in.Description, EventPattern: in.EventPattern, RetentionDays: days, KmsKeyIdentifier: in.KmsKeyIdentifier,
		State: ArchiveEnabled, Created: s.now().UTC()}
	// The stream first: once the record is seen, routers write to it.
	if err := s.st.CreateArchive(ctx, a.ID, retention(days)); err != nil {
		return nil, err
	}
	if err := s.save(ctx, archiveKey(name), 0, a); err != nil {
		if derr := s.st.DeleteArchive(context.WithoutCancel(ctx), a.ID); derr != nil {
			s.log.Error("remove the stream of an archive not created", "archive", name, "error", derr)
		}
		var aerr *awsapi.Error
		if errors.As(err, &aerr) && aerr.Code == awsapi.CodeConcurrentMod {
			return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Archive %s already exists.", name)
		}
		return nil, err
	}
	return struct {
		ArchiveArn   string      `json:"ArchiveArn"`
		State        string      `json:"State"`
		CreationTime awsapi.Time `json:"CreationTime"`
	}{a.Arn, a.State, awsapi.Time{Time: a.Created}}, nil
}

func lastSegment(arn string) string {
	return arn[strings.LastIndexByte(arn, '/')+1:]
}

type archiveOut struct {
	ArchiveArn       string       `json:"ArchiveArn,omitempty"`
	ArchiveName      string       `json:"ArchiveName"`
	EventSourceArn   string       `json:"EventSourceArn"`
	Description      *string      `json:"Description,omitempty"`
	EventPattern     *string      `json:"EventPattern,omitempty"`
	State            string       `json:"State"`
	StateReason      *string      `json:"StateReason,omitempty"`
	KmsKeyIdentifier *string      `json:"KmsKeyIdentifier,omitempty"`
	RetentionDays    int          `json:"RetentionDays"`
	SizeBytes        int64        `json:"SizeBytes"`
	EventCount       int64        `json:"EventCount"`
	CreationTime     *awsapi.Time `json:"CreationTime,omitempty"`
}

// archiveView describes an archive with its counts as the store holds them
// now.
func (s *Service) archiveView(ctx context.Context, a *Archive) (archiveOut, error) {
	stats, err := s.st.ArchiveStats(ctx, a.ID)
	if err != nil && !errors.Is(err, store.ErrNoArchive) {
		return archiveOut{}, err
	}
	return archiveOut{ArchiveArn: a.Arn, ArchiveName: a.Name, EventSourceArn: a.BusArn, Description: a.Description,
		EventPattern: a.EventPattern, State: a.State, StateReason: a.StateReason, KmsKeyIdentifier: a.KmsKeyIdentifier,
		RetentionDays: a.RetentionDays, SizeBytes: stats.Bytes, EventCount: stats.Events,
		CreationTime: &awsapi.Time{Time: a.Created}}, nil
}

// archiveOf resolves the ArchiveName of a request to an archive.
func (s *Service) archiveOf(in *archiveInput) (Archive, uint64, error) {
	var v awsapi.Violations
	validateArchiveName(&v, in.ArchiveName, "archiveName", true)
	if err := v.Err(); err != nil {
		return Archive{}, 0, err
	}
	a, rev, ok := s.reg.getArchive(*in.ArchiveName)
	if !ok {
		return Archive{}, 0, notFoundArchive(*in.ArchiveName)
	}
	return a, rev, nil
}

func (s *Service) describeArchive(ctx context.Context, body []byte) (any, error) {
	var in archiveInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	a, _, err := s.archiveOf(&in)
	if err != nil {
		return nil, err
	}
	return s.archiveView(ctx, &a)
}

func (s *Service) listArchives(ctx context.Context, body []byte) (any, error) {
	var in archiveInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	awsapi.ValidateNamePrefix(&v, in.NamePrefix, 48, archiveNameRE)
	validateEventSourceArn(&v, in.EventSourceArn, false)
	if in.State != nil && !slices.Contains(archiveStates, *in.State) {
		v.Add(*in.State, "state", awsapi.InEnum(archiveStates...))
	}
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if filters(in.NamePrefix != nil, in.EventSourceArn != nil, in.State != nil) > 1 {
		return nil, awsapi.Errorf(awsapi.CodeValidation, "At most one filter is allowed for ListArchives. Use either : State, EventSourceArn, or NamePrefix.")
	}
	bus := ""
	if in.EventSourceArn != nil {
		b, ok := s.arns.busName(in.EventSourceArn)
		if !ok {
			return nil, notFoundBus(lastSegment(*in.EventSourceArn))
		}
		if _, _, ok := s.reg.getBus(b); !ok {
			return nil, notFoundBus(b)
		}
		bus = b
	}
	archives := map[string]Archive{}
	var names []string
	for _, a := range s.reg.listArchives() {
		if (in.NamePrefix == nil || strings.HasPrefix(a.Name, *in.NamePrefix)) && (bus == "" || a.Bus == bus) &&
			(in.State == nil || a.State == *in.State) {
			names = append(names, a.Name)
			archives[a.Name] = a
		}
	}
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Archives  []archiveOut `json:"Archives"`
		NextToken *string      `json:"NextToken,omitempty"`
	}{Archives: []archiveOut{}, NextToken: next}
	for _, n := range page {
		a := archives[n]
		o, err := s.archiveView(ctx, &a)
		if err != nil {
			return nil, err
		}
		o.ArchiveArn, o.Description, o.EventPattern, o.KmsKeyIdentifier = "", nil, nil, nil
		out.Archives = append(out.Archives, o)
	}
	return out, nil
}

func filters(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

func (s *Service) updateArchive(ctx context.Context, body []byte) (any, error) {
	var in archiveInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateArchiveName(&v, in.ArchiveName, "archiveName", true)
	validateArchiveFields(&v, &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	// Recorded from AWS: this is checked before the archive's existence.
	if in.EventPattern == nil && in.RetentionDays == nil && in.Description == nil && in.KmsKeyIdentifier == nil {
		return nil, awsapi.Errorf(awsapi.CodeValidation, "At least one of EventPattern, RetentionDays or Description must be provided.")
	}
	if err := s.archivePatternError(in.EventPattern); err != nil {
		return nil, err
	}
	a, rev, err := s.archiveOf(&in)
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		a.Description = in.Description
	}
	if in.EventPattern != nil {
		a.EventPattern = in.EventPattern
		if *in.EventPattern == "" {
			a.EventPattern = nil
		}
	}
	if in.KmsKeyIdentifier != nil {
		a.KmsKeyIdentifier = in.KmsKeyIdentifier
	}
	if in.RetentionDays != nil {
		a.RetentionDays = *in.RetentionDays
	}
	// An update attaches an archive whose rule was removed with Force
	// again: the user has said what the archive should receive.
	a.Detached, a.State, a.StateReason = "", ArchiveEnabled, nil
	if err := s.save(ctx, archiveKey(a.Name), rev, a); err != nil {
		return nil, err
	}
	if in.RetentionDays != nil {
		if err := s.st.CreateArchive(ctx, a.ID, retention(a.RetentionDays)); err != nil {
			return nil, err
		}
	}
	return struct {
		ArchiveArn   string      `json:"ArchiveArn"`
		State        string      `json:"State"`
		CreationTime awsapi.Time `json:"CreationTime"`
	}{a.Arn, a.State, awsapi.Time{Time: a.Created}}, nil
}

func (s *Service) deleteArchive(ctx context.Context, body []byte) (any, error) {
	var in archiveInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	a, rev, err := s.archiveOf(&in)
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, archiveKey(a.Name), rev); err != nil {
		return nil, err
	}
	// The record is gone, so no router writes to the stream any more
	// (one that routed just before may still: a write to a deleted
	// stream fails, and the event is routed again without the archive).
	if err := s.st.DeleteArchive(ctx, a.ID); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// detachArchive records that an archive's managed rule lost its target
// or was deleted with Force: the archive then receives no events, as in
// EventBridge, and says why.
func (s *Service) detachArchive(ctx context.Context, r Rule, what string) error {
	name := strings.TrimPrefix(r.Name, archiveRulePrefix)
	a, rev, ok := s.reg.getArchive(name)
	if !ok {
		return nil
	}
	if a.Detached == "rule" || a.Detached == what {
		return nil
	}
	a.Detached, a.State = what, ArchiveDisabled
	reason := "The archive's managed rule was deleted with Force; UpdateArchive attaches it again."
	if what == "targets" {
		reason = "The target of the archive's managed rule was removed with Force; UpdateArchive attaches it again."
	}
	a.StateReason = &reason
	return s.save(ctx, archiveKey(a.Name), rev, a)
}

// managedRuleError refuses an operation that would change a managed rule.
// DeleteRule and RemoveTargets go ahead with Force.
func managedRuleError(r Rule, op string) error {
	if op == "DeleteRule" || op == "RemoveTargets" {
		return awsapi.Errorf(awsapi.CodeManagedRule, "%s is a managed rule. Set 'force' parameter to true to override.", r.Name)
	}
	return awsapi.Errorf(awsapi.CodeManagedRule, "%s is a managed rule; %s cannot change it.", r.Name, op)
}
