package eventbus

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// Replay is a replay as stored in the configuration bucket: what it sends,
// where, its state, and how far it has got. The node that runs it (the
// owner, until its lease runs out) writes its progress there, so that
// another node, or the same one after a restart, carries on from there.
type Replay struct {
	Name        string    `json:"name"`
	Arn         string    `json:"arn"`
	Description *string   `json:"description,omitempty"`
	Archive     string    `json:"archive"`
	ArchiveArn  string    `json:"archiveArn"`
	ArchiveID   string    `json:"archiveId"`
	Bus         string    `json:"bus"`
	BusArn      string    `json:"busArn"`
	FilterArns  []string  `json:"filterArns,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	State       string    `json:"state"`
	StateReason *string   `json:"stateReason,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	// LastReplayed is the time of the latest event replayed so far.
	LastReplayed time.Time `json:"lastReplayed,omitzero"`

	// Progress. Mark is the archive stream's last sequence when the
	// replay began: events archived later are not part of it. Events of
	// the hours before Hour are done, and those of Hour up to sequence
	// Seq. Replayed counts the events sent.
	Mark     uint64 `json:"mark,omitempty"`
	Hour     int64  `json:"hour,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Replayed int64  `json:"replayed,omitempty"`

	// Owner is the node running the replay, until Lease.
	Owner string    `json:"owner,omitempty"`
	Lease time.Time `json:"lease,omitzero"`
}

// Replay states, as AWS spells them.
const (
	ReplayStarting   = "STARTING"
	ReplayRunning    = "RUNNING"
	ReplayCancelling = "CANCELLING"
	ReplayCompleted  = "COMPLETED"
	ReplayCancelled  = "CANCELLED"
	ReplayFailed     = "FAILED"

	replayPrefix = "replay."
	replayNameRE = `[\.\-_A-Za-z0-9]+`
	// maxActiveReplays is EventBridge's quota of replays STARTING or
	// RUNNING at once, per account and region.
	maxActiveReplays = 10
	// replayKeep is how long a finished replay stays listed; AWS keeps
	// them 90 days (reported by LocalStack; UNVERIFIED).
	replayKeep = 90 * 24 * time.Hour
)

var (
	replayNameMatch = regexp.MustCompile(`^` + replayNameRE + `$`)
	replayStates    = []string{ReplayStarting, ReplayRunning, ReplayCancelling, ReplayCompleted, ReplayCancelled, ReplayFailed}
	replayArnMatch  = regexp.MustCompile(`^arn:aws([a-z]|\-)*:events:([a-z]|\d|\-)*:([0-9]{12})?:.+\/[\.\-_A-Za-z0-9]+$`)
)

func replayKey(name string) string { return replayPrefix + store.Token(name) }

func (a arns) replay(name string) string { return a.prefix() + "replay/" + name }

func (r *Replay) active() bool { return r.State == ReplayStarting || r.State == ReplayRunning }

func (r *Replay) finished() bool {
	return r.State == ReplayCompleted || r.State == ReplayCancelled || r.State == ReplayFailed
}

type replayInput struct {
	ReplayName     *string      `json:"ReplayName"`
	Description    *string      `json:"Description"`
	EventSourceArn *string      `json:"EventSourceArn"`
	EventStartTime *awsapi.Time `json:"EventStartTime"`
	EventEndTime   *awsapi.Time `json:"EventEndTime"`
	Destination    *struct {
		Arn        *string  `json:"Arn"`
		FilterArns []string `json:"FilterArns"`
	} `json:"Destination"`
	NamePrefix *string `json:"NamePrefix"`
	State      *string `json:"State"`
	NextToken  *string `json:"NextToken"`
	Limit      *int    `json:"Limit"`
}

func validateReplayName(v *awsapi.Violations, name *string, path string, required bool) {
	validateName(v, name, path, required, 64, replayNameMatch, replayNameRE)
}

func invalidParam(name, reason string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeValidation, "Parameter %s is not valid. Reason: %s", name, reason)
}

func (s *Service) startReplay(ctx context.Context, body []byte) (any, error) {
	var in replayInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateReplayName(&v, in.ReplayName, "replayName", true)
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	validateEventSourceArn(&v, in.EventSourceArn, true)
	if in.EventStartTime == nil {
		v.Add(nil, "eventStartTime", awsapi.MustNotBeNull)
	}
	if in.EventEndTime == nil {
		v.Add(nil, "eventEndTime", awsapi.MustNotBeNull)
	}
	switch {
	case in.Destination == nil:
		v.Add(nil, "destination", awsapi.MustNotBeNull)
	case in.Destination.Arn == nil:
		v.Add(nil, "destination.arn", awsapi.MustNotBeNull)
	case len(*in.Destination.Arn) < 1:
		v.Add(*in.Destination.Arn, "destination.arn", awsapi.MinLen(1))
	case len(*in.Destination.Arn) > 1600:
		v.Add(*in.Destination.Arn, "destination.arn", awsapi.MaxLen(1600))
	}
	if in.Destination != nil {
		for i, f := range in.Destination.FilterArns {
			if len(f) < 1 || len(f) > 1600 {
				v.Add(f, "destination.filterArns."+strconv.Itoa(i+1)+".member", awsapi.MaxLen(1600))
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	start, end := in.EventStartTime.Time.UTC(), in.EventEndTime.Time.UTC()
	// Recorded from AWS: the times are checked before the resources.
	if !start.Before(end) {
		return nil, invalidParam("EventEndTime", "EventStartTime must be before EventEndTime.")
	}
	archiveName, ok := s.arns.archiveName(*in.EventSourceArn)
	if !ok {
		return nil, invalidParam("EventSourceArn", "Archive "+lastSegment(*in.EventSourceArn)+" does not exist.")
	}
	a, _, ok := s.reg.getArchive(archiveName)
	if !ok {
		return nil, invalidParam("EventSourceArn", "Archive "+archiveName+" does not exist.")
	}
	bus, ok := s.arns.busName(in.Destination.Arn)
	if !ok || !strings.HasPrefix(*in.Destination.Arn, "arn:") {
		return nil, invalidParam("Destination.Arn", "Must contain an event bus ARN.")
	}
	if _, _, ok := s.reg.getBus(bus); !ok {
		return nil, notFoundBus(bus)
	}
	if bus != a.Bus {
		return nil, invalidParam("Destination.Arn", "Cross event bus replay is not permitted.")
	}
	for _, f := range in.Destination.FilterArns {
		rb, rn, ok := s.arns.resource(f)
		if !ok || rn == "" || rb != bus {
			return nil, invalidParam("Destination.FilterArns", "Rule must be on the destination event bus.")
		}
		if _, _, ok := s.reg.getRule(rb, rn); !ok {
			return nil, notFoundRule(rb, rn)
		}
	}
	name := *in.ReplayName
	if _, _, ok := s.getReplay(name); ok {
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Replay %s already exists.", name)
	}
	if s.activeReplays() >= maxActiveReplays {
		return nil, replayLimit()
	}
	r := Replay{Name: name, Arn: s.arns.replay(name), Description: in.Description, Archive: a.Name, ArchiveArn: a.Arn,
		ArchiveID: a.ID, Bus: bus, BusArn: s.arns.bus(bus), FilterArns: in.Destination.FilterArns, Start: start, End: end,
		State: ReplayStarting, Started: s.now().UTC(), Hour: store.ArchiveHour(start)}
	rev, err := s.put(ctx, replayKey(name), 0, r)
	if lostRace(err) {
		// Started at the same moment through another node.
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Replay %s already exists.", name)
	}
	if err != nil {
		return nil, err
	}
	s.seen(ctx, rev)
	// Two nodes may each have let a tenth replay in: the replays that
	// are active are ranked by their records' revisions, and one that
	// ranks past the quota withdraws.
	if s.replayRank(name) >= maxActiveReplays {
		if _, err := s.st.Delete(ctx, replayKey(name), rev); err == nil {
			return nil, replayLimit()
		}
	}
	s.wakeReplays()
	return struct {
		ReplayArn       string      `json:"ReplayArn"`
		State           string      `json:"State"`
		ReplayStartTime awsapi.Time `json:"ReplayStartTime"`
	}{r.Arn, r.State, awsapi.Time{Time: r.Started}}, nil
}

func replayLimit() *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeLimitExceeded, "The requested resource exceeds the maximum number allowed.")
}

// getReplay returns a replay and its record's revision.
func (s *Service) getReplay(name string) (Replay, uint64, bool) {
	var r Replay
	rev, ok := s.reg.getObj(replayKey(name), &r)
	return r, rev, ok
}

// replays returns every replay with its record's revision.
func (s *Service) replays() ([]Replay, []uint64) {
	var out []Replay
	var revs []uint64
	for _, k := range s.reg.listObjs(replayPrefix) {
		var r Replay
		if rev, ok := s.reg.getObj(k, &r); ok {
			out = append(out, r)
			revs = append(revs, rev)
		}
	}
	return out, revs
}

func (s *Service) activeReplays() int {
	n := 0
	rs, _ := s.replays()
	for _, r := range rs {
		if r.active() {
			n++
		}
	}
	return n
}

// replayRank is the place of an active replay among the active ones, by
// the revision of their records.
func (s *Service) replayRank(name string) int {
	rs, revs := s.replays()
	var mine uint64
	for i, r := range rs {
		if r.Name == name {
			mine = revs[i]
		}
	}
	rank := 0
	for i, r := range rs {
		if r.active() && r.Name != name && revs[i] < mine {
			rank++
		}
	}
	return rank
}

type replayOut struct {
	ReplayName            string       `json:"ReplayName"`
	ReplayArn             string       `json:"ReplayArn,omitempty"`
	Description           *string      `json:"Description,omitempty"`
	State                 string       `json:"State"`
	StateReason           *string      `json:"StateReason,omitempty"`
	EventSourceArn        string       `json:"EventSourceArn"`
	Destination           *replayDest  `json:"Destination,omitempty"`
	EventStartTime        *awsapi.Time `json:"EventStartTime,omitempty"`
	EventEndTime          *awsapi.Time `json:"EventEndTime,omitempty"`
	EventLastReplayedTime *awsapi.Time `json:"EventLastReplayedTime,omitempty"`
	ReplayStartTime       *awsapi.Time `json:"ReplayStartTime,omitempty"`
	ReplayEndTime         *awsapi.Time `json:"ReplayEndTime,omitempty"`
}

type replayDest struct {
	Arn        string   `json:"Arn"`
	FilterArns []string `json:"FilterArns,omitempty"`
}

func optTime(t time.Time) *awsapi.Time {
	if t.IsZero() {
		return nil
	}
	return &awsapi.Time{Time: t}
}

func (r *Replay) view() replayOut {
	return replayOut{ReplayName: r.Name, ReplayArn: r.Arn, Description: r.Description, State: r.State,
		StateReason: r.StateReason, EventSourceArn: r.ArchiveArn,
		Destination:    &replayDest{Arn: r.BusArn, FilterArns: r.FilterArns},
		EventStartTime: optTime(r.Start), EventEndTime: optTime(r.End), EventLastReplayedTime: optTime(r.LastReplayed),
		ReplayStartTime: optTime(r.Started), ReplayEndTime: optTime(r.Ended)}
}

// replayOf resolves the ReplayName of a request to a replay.
func (s *Service) replayOf(in *replayInput) (Replay, uint64, error) {
	var v awsapi.Violations
	validateReplayName(&v, in.ReplayName, "replayName", true)
	if err := v.Err(); err != nil {
		return Replay{}, 0, err
	}
	r, rev, ok := s.getReplay(*in.ReplayName)
	if !ok {
		return Replay{}, 0, awsapi.Errorf(awsapi.CodeNotFound, "Replay %s does not exist.", *in.ReplayName)
	}
	return r, rev, nil
}

func (s *Service) describeReplay(ctx context.Context, body []byte) (any, error) {
	var in replayInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	r, _, err := s.replayOf(&in)
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

func (s *Service) listReplays(ctx context.Context, body []byte) (any, error) {
	var in replayInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	awsapi.ValidateNamePrefix(&v, in.NamePrefix, 64, replayNameRE)
	if in.State != nil && !slices.Contains(replayStates, *in.State) {
		v.Add(*in.State, "state", awsapi.InEnum(replayStates...))
	}
	validateEventSourceArn(&v, in.EventSourceArn, false)
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if filters(in.NamePrefix != nil, in.EventSourceArn != nil, in.State != nil) > 1 {
		return nil, awsapi.Errorf(awsapi.CodeValidation, "At most one filter is allowed for ListReplays. Use either : State, EventSourceArn, or NamePrefix.")
	}
	byName := map[string]Replay{}
	var names []string
	rs, _ := s.replays()
	for _, r := range rs {
		if (in.NamePrefix == nil || strings.HasPrefix(r.Name, *in.NamePrefix)) && (in.State == nil || r.State == *in.State) &&
			(in.EventSourceArn == nil || r.ArchiveArn == *in.EventSourceArn) {
			names = append(names, r.Name)
			byName[r.Name] = r
		}
	}
	slices.Sort(names)
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Replays   []replayOut `json:"Replays"`
		NextToken *string     `json:"NextToken,omitempty"`
	}{Replays: []replayOut{}, NextToken: next}
	for _, n := range page {
		r := byName[n]
		o := r.view()
		o.ReplayArn, o.Description, o.Destination = "", nil, nil
		out.Replays = append(out.Replays, o)
	}
	return out, nil
}

func (s *Service) cancelReplay(ctx context.Context, body []byte) (any, error) {
	var in replayInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	r, rev, err := s.replayOf(&in)
	if err != nil {
		return nil, err
	}
	if !r.active() {
		return nil, awsapi.Errorf(awsapi.CodeIllegalStatus, "Replay %s is not in a valid state for this operation.", r.Name)
	}
	r.State = ReplayCancelling
	if err := s.save(ctx, replayKey(r.Name), rev, r); err != nil {
		return nil, err
	}
	s.wakeReplays()
	return struct {
		ReplayArn string `json:"ReplayArn"`
		State     string `json:"State"`
	}{r.Arn, r.State}, nil
}
