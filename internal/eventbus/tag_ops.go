package eventbus

import (
	"context"
	"slices"
	"strconv"

	"bridgeport/internal/awsapi"
)

const maxTags = 50

func validateTags(v *awsapi.Violations, tags []Tag, path string) {
	for i, t := range tags {
		p := path + "." + strconv.Itoa(i+1) + ".member"
		switch {
		case len(t.Key) < 1:
			v.Add(t.Key, p+".key", awsapi.MinLen(1))
		case len(t.Key) > 128:
			v.Add(t.Key, p+".key", awsapi.MaxLen(128))
		}
		if len(t.Value) > 256 {
			v.Add(t.Value, p+".value", awsapi.MaxLen(256))
		}
	}
}

// mergeTags sets the tags in add on top of tags, keeping keys unique.
func mergeTags(tags, add []Tag) []Tag {
	out := slices.Clone(tags)
	for _, t := range add {
		i := slices.IndexFunc(out, func(x Tag) bool { return x.Key == t.Key })
		if i >= 0 {
			out[i].Value = t.Value
		} else {
			out = append(out, t)
		}
	}
	return out
}

type tagInput struct {
	ResourceARN *string  `json:"ResourceARN"`
	Tags        []Tag    `json:"Tags"`
	TagKeys     []string `json:"TagKeys"`
}

func validateResourceARN(v *awsapi.Violations, arn *string) {
	switch {
	case arn == nil:
		v.Add(nil, "resourceARN", awsapi.MustNotBeNull)
	case len(*arn) < 1:
		v.Add(*arn, "resourceARN", awsapi.MinLen(1))
	case len(*arn) > 1600:
		v.Add(*arn, "resourceARN", awsapi.MaxLen(1600))
	}
}

// updateTags applies fn to the tags of the bus or rule named by arn.
func (s *Service) updateTags(ctx context.Context, arn string, fn func([]Tag) ([]Tag, error)) error {
	bus, rule, ok := s.arns.resource(arn)
	if !ok {
		return awsapi.Errorf(awsapi.CodeNotFound, "Resource %s does not exist.", arn)
	}
	if rule == "" {
		b, rev, ok := s.reg.getBus(bus)
		if !ok {
			return notFoundBus(bus)
		}
		tags, err := fn(b.Tags)
		if err != nil {
			return err
		}
		b.Tags = tags
		return s.save(ctx, busKey(bus), rev, b)
	}
	r, rev, ok := s.reg.getRule(bus, rule)
	if !ok {
		return notFoundRule(bus, rule)
	}
	if r.ManagedBy != "" {
		return managedRuleError(r, "TagResource or UntagResource")
	}
	tags, err := fn(r.Tags)
	if err != nil {
		return err
	}
	r.Tags = tags
	return s.save(ctx, ruleKey(bus, rule), rev, r)
}

func (s *Service) tagResource(ctx context.Context, body []byte) (any, error) {
	var in tagInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateResourceARN(&v, in.ResourceARN)
	if in.Tags == nil {
		v.Add(nil, "tags", awsapi.MustNotBeNull)
	}
	validateTags(&v, in.Tags, "tags")
	if err := v.Err(); err != nil {
		return nil, err
	}
	err := s.updateTags(ctx, *in.ResourceARN, func(tags []Tag) ([]Tag, error) {
		out := mergeTags(tags, in.Tags)
		if len(out) > maxTags {
			// UNVERIFIED wording.
			return nil, awsapi.Errorf(awsapi.CodeLimitExceeded, "A resource can have at most %d tags.", maxTags)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) untagResource(ctx context.Context, body []byte) (any, error) {
	var in tagInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateResourceARN(&v, in.ResourceARN)
	if in.TagKeys == nil {
		v.Add(nil, "tagKeys", awsapi.MustNotBeNull)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	err := s.updateTags(ctx, *in.ResourceARN, func(tags []Tag) ([]Tag, error) {
		return slices.DeleteFunc(slices.Clone(tags), func(t Tag) bool { return slices.Contains(in.TagKeys, t.Key) }), nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) listTagsForResource(ctx context.Context, body []byte) (any, error) {
	var in tagInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateResourceARN(&v, in.ResourceARN)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var tags []Tag
	bus, rule, ok := s.arns.resource(*in.ResourceARN)
	switch {
	case !ok:
		return nil, awsapi.Errorf(awsapi.CodeNotFound, "Resource %s does not exist.", *in.ResourceARN)
	case rule == "":
		b, _, ok := s.reg.getBus(bus)
		if !ok {
			return nil, notFoundBus(bus)
		}
		tags = b.Tags
	default:
		r, _, ok := s.reg.getRule(bus, rule)
		if !ok {
			return nil, notFoundRule(bus, rule)
		}
		tags = r.Tags
	}
	if tags == nil {
		tags = []Tag{}
	}
	return struct {
		Tags []Tag `json:"Tags"`
	}{tags}, nil
}
