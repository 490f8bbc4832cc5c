package eventbus

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"bridgeport/internal/awsapi"
)

var busNameRE = regexp.MustCompile(`^[/\.\-_A-Za-z0-9]+$`)

const busNamePattern = `[/\.\-_A-Za-z0-9]+`

type busInput struct {
	Name             *string           `json:"Name"`
	EventSourceName  *string           `json:"EventSourceName"`
	Description      *string           `json:"Description"`
	KmsKeyIdentifier *string           `json:"KmsKeyIdentifier"`
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig"`
	LogConfig        json.RawMessage   `json:"LogConfig"`
	Tags             []Tag             `json:"Tags"`
}

type busOutput struct {
	Name             string            `json:"Name,omitempty"`
	Arn              string            `json:"Arn,omitempty"`
	EventBusArn      string            `json:"EventBusArn,omitempty"`
	Description      *string           `json:"Description,omitempty"`
	KmsKeyIdentifier *string           `json:"KmsKeyIdentifier,omitempty"`
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	LogConfig        json.RawMessage   `json:"LogConfig,omitempty"`
	Policy           string            `json:"Policy,omitempty"`
	CreationTime     *awsapi.Time      `json:"CreationTime,omitempty"`
	LastModifiedTime *awsapi.Time      `json:"LastModifiedTime,omitempty"`
}

func describeBus(b Bus) busOutput {
	return busOutput{
		Name: b.Name, Arn: b.Arn, Description: b.Description, KmsKeyIdentifier: b.KmsKeyIdentifier,
		DeadLetterConfig: b.DeadLetterConfig, LogConfig: b.LogConfig, Policy: b.Policy,
		CreationTime: &awsapi.Time{Time: b.Created}, LastModifiedTime: &awsapi.Time{Time: b.Modified},
	}
}

func validateBusName(v *awsapi.Violations, name *string, path string) {
	switch {
	case name == nil:
		v.Add(nil, path, awsapi.MustNotBeNull)
	case len(*name) < 1:
		v.Add(*name, path, awsapi.MinLen(1))
	case len(*name) > 256:
		v.Add(*name, path, awsapi.MaxLen(256))
	case !busNameRE.MatchString(*name):
		v.Add(*name, path, awsapi.MatchPattern(busNamePattern))
	}
}

func validateBusFields(v *awsapi.Violations, in *busInput) {
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	if in.DeadLetterConfig != nil && in.DeadLetterConfig.Arn != nil && (len(*in.DeadLetterConfig.Arn) < 1 || len(*in.DeadLetterConfig.Arn) > 1600) {
		v.Add(*in.DeadLetterConfig.Arn, "deadLetterConfig.arn", awsapi.MaxLen(1600))
	}
	validateTags(v, in.Tags, "tags")
}

func notFoundBus(name string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeNotFound, "Event bus %s does not exist.", name)
}

func (s *Service) createEventBus(ctx context.Context, body []byte) (any, error) {
	var in busInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateBusName(&v, in.Name, "name")
	validateBusFields(&v, &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	name := *in.Name
	switch {
	case name == defaultBus:
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Event bus %s already exists.", name)
	case in.EventSourceName != nil:
		// UNVERIFIED wording; partner event sources do not exist here.
		return nil, awsapi.Errorf(awsapi.CodeNotFound, "Event source %s does not exist.", *in.EventSourceName)
	case strings.Contains(name, "/"):
		return nil, awsapi.Errorf(awsapi.CodeValidation, "Event bus name must not contain '/'.")
	}
	if _, _, ok := s.reg.getBus(name); ok {
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Event bus %s already exists.", name)
	}
	if buses, _, _ := s.reg.counts(name); buses >= s.quotas.EventBuses {
		return nil, limitExceeded()
	}
	now := s.now().UTC()
	bus := Bus{Name: name, Arn: s.arns.bus(name), Description: in.Description, KmsKeyIdentifier: in.KmsKeyIdentifier,
		DeadLetterConfig: in.DeadLetterConfig, LogConfig: in.LogConfig, Created: now, Modified: now, Tags: in.Tags}
	if err := s.save(ctx, busKey(name), 0, bus); err != nil {
		if e, ok := err.(*awsapi.Error); ok && e.Code == awsapi.CodeConcurrentMod {
			return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Event bus %s already exists.", name)
		}
		return nil, err
	}
	return busOutput{EventBusArn: bus.Arn, Description: bus.Description, KmsKeyIdentifier: bus.KmsKeyIdentifier,
		DeadLetterConfig: bus.DeadLetterConfig, LogConfig: bus.LogConfig}, nil
}

func limitExceeded() *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeLimitExceeded, "The requested resource exceeds the maximum number allowed.")
}

func (s *Service) describeEventBus(ctx context.Context, body []byte) (any, error) {
	var in busInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	b, _, err := s.existingBus(in.Name, "name")
	if err != nil {
		return nil, err
	}
	return describeBus(b), nil
}

// existingBus resolves an EventBusName-like parameter (resolveBus) to a
// bus that exists, with its revision.
func (s *Service) existingBus(nameOrArn *string, path string) (Bus, uint64, error) {
	name, err := s.resolveBus(nameOrArn, path)
	if err != nil {
		return Bus{}, 0, err
	}
	b, rev, ok := s.reg.getBus(name)
	if !ok {
		return Bus{}, 0, notFoundBus(name)
	}
	return b, rev, nil
}

// resolveBus validates an EventBusName-like parameter (a name or an ARN;
// empty means the default bus) and returns the bus name.
func (s *Service) resolveBus(nameOrArn *string, path string) (string, error) {
	if nameOrArn != nil {
		var v awsapi.Violations
		switch {
		case len(*nameOrArn) > 1600:
			v.Add(*nameOrArn, path, awsapi.MaxLen(1600))
		case !strings.HasPrefix(*nameOrArn, "arn:") && *nameOrArn != "" && !busNameRE.MatchString(*nameOrArn):
			v.Add(*nameOrArn, path, awsapi.MatchPattern(`(arn:aws[\w-]*:events:[a-z]{2}-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[/\.\-_A-Za-z0-9]+`))
		}
		if err := v.Err(); err != nil {
			return "", err
		}
	}
	name, ok := s.arns.busName(nameOrArn)
	if !ok {
		return "", notFoundBus(*nameOrArn)
	}
	return name, nil
}

func (s *Service) updateEventBus(ctx context.Context, body []byte) (any, error) {
	var in busInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateBusFields(&v, &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	b, rev, err := s.existingBus(in.Name, "name")
	if err != nil {
		return nil, err
	}
	name := b.Name
	if in.Description != nil {
		b.Description = in.Description
	}
	if in.KmsKeyIdentifier != nil {
		b.KmsKeyIdentifier = in.KmsKeyIdentifier
	}
	if in.DeadLetterConfig != nil {
		b.DeadLetterConfig = in.DeadLetterConfig
	}
	if in.LogConfig != nil {
		b.LogConfig = in.LogConfig
	}
	b.Modified = s.now().UTC()
	if err := s.save(ctx, busKey(name), rev, b); err != nil {
		return nil, err
	}
	return busOutput{Name: b.Name, Arn: b.Arn, Description: b.Description, KmsKeyIdentifier: b.KmsKeyIdentifier,
		DeadLetterConfig: b.DeadLetterConfig, LogConfig: b.LogConfig}, nil
}

// deleteEventBus deletes a bus and the rules on it. Deleting a bus that does
// not exist succeeds, as in AWS.
func (s *Service) deleteEventBus(ctx context.Context, body []byte) (any, error) {
	var in busInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateBusName(&v, in.Name, "name")
	if err := v.Err(); err != nil {
		return nil, err
	}
	name := *in.Name
	if name == defaultBus {
		return nil, awsapi.Errorf(awsapi.CodeValidation, "Cannot delete event bus default.")
	}
	_, rev, ok := s.reg.getBus(name)
	if !ok {
		return struct{}{}, nil
	}
	for _, r := range s.reg.listRules(name) {
		_, rrev, ok := s.reg.getRule(name, r.Name)
		if !ok || r.ManagedBy != "" {
			// An archive's rule goes with its archive, which keeps its
			// events (and receives again if the bus is created again).
			continue
		}
		if err := s.remove(ctx, ruleKey(name, r.Name), rrev); err != nil {
			return nil, err
		}
	}
	if err := s.remove(ctx, busKey(name), rev); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

type listInput struct {
	NamePrefix   *string `json:"NamePrefix"`
	NextToken    *string `json:"NextToken"`
	Limit        *int    `json:"Limit"`
	EventBusName *string `json:"EventBusName"`
	TargetArn    *string `json:"TargetArn"`
	Rule         *string `json:"Rule"`
}

func (s *Service) listEventBuses(ctx context.Context, body []byte) (any, error) {
	var in listInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	awsapi.ValidateNamePrefix(&v, in.NamePrefix, 256, busNamePattern)
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var names []string
	buses := map[string]Bus{}
	for _, b := range s.reg.listBuses() {
		if in.NamePrefix == nil || strings.HasPrefix(b.Name, *in.NamePrefix) {
			names = append(names, b.Name)
			buses[b.Name] = b
		}
	}
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		EventBuses []busOutput `json:"EventBuses"`
		NextToken  *string     `json:"NextToken,omitempty"`
	}{EventBuses: []busOutput{}, NextToken: next}
	for _, n := range page {
		out.EventBuses = append(out.EventBuses, describeBus(buses[n]))
	}
	return out, nil
}
