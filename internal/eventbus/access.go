package eventbus

import (
	"encoding/json"
	"strings"

	"bridgeport/internal/awsapi"
)

// accessRequest holds the members of any EventBridge request that name
// the resources it touches.
type accessRequest struct {
	Name         *string `json:"Name"`
	EventBusName *string `json:"EventBusName"`
	Rule         *string `json:"Rule"`
	ArchiveName  *string `json:"ArchiveName"`
	ReplayName   *string `json:"ReplayName"`
	ResourceARN  *string `json:"ResourceARN"`
	// The other resources some operations use.
	EventSourceArn *string `json:"EventSourceArn"`
	ConnectionArn  *string `json:"ConnectionArn"`
	RoleArn        *string `json:"RoleArn"`
	Targets        []struct {
		RoleArn *string `json:"RoleArn"`
	} `json:"Targets"`
}

// Access returns the permissions an EventBridge request needs, with the
// resource ARNs AWS's service authorization reference gives: the bus, the
// rule, the connection, API destination, archive or replay it names, or
// "*" for the operations on none (the List operations, TestEventPattern,
// PutPermission).
// PutEvents needs events:PutEvents on each entry's bus, with its source
// and detail type as events:source and events:detail-type, decided entry
// by entry (entryAccess); PutRule and
// PutTargets with a RoleArn need iam:PassRole on the role. A request
// that does not decode needs its action on "*" (it then fails as it
// would have).
func (s *Service) Access(op string, body []byte) []awsapi.Access {
	action := "events:" + op
	var in accessRequest
	if json.Unmarshal(body, &in) != nil {
		return []awsapi.Access{{Action: action, Resource: "*"}}
	}
	str := deref
	bus := func(p *string) string {
		name, ok := s.arns.busName(p)
		if !ok {
			return str(p) // an ARN of elsewhere: refused by the operation
		}
		return s.arns.bus(name)
	}
	rule := func(name *string) string {
		b, _ := s.arns.busName(in.EventBusName)
		return s.arns.rule(b, str(name))
	}
	one := func(resource string) []awsapi.Access { return []awsapi.Access{{Action: action, Resource: resource}} }
	passRole := func(out []awsapi.Access, role *string) []awsapi.Access {
		if role == nil || *role == "" {
			return out
		}
		return append(out, awsapi.Access{Action: "iam:PassRole", Resource: *role,
			Context: map[string]string{"iam:PassedToService": "events.amazonaws.com"}})
	}
	switch op {
	case "CreateEventBus", "DescribeEventBus", "UpdateEventBus", "DeleteEventBus":
		return one(bus(in.Name))
	case "PutRule":
		return passRole(one(rule(in.Name)), in.RoleArn)
	case "DescribeRule", "DeleteRule", "EnableRule", "DisableRule":
		return one(rule(in.Name))
	case "PutTargets":
		out := one(rule(in.Rule))
		for _, t := range in.Targets {
			out = passRole(out, t.RoleArn)
		}
		return out
	case "RemoveTargets", "ListTargetsByRule":
		return one(rule(in.Rule))
	case "TagResource", "UntagResource", "ListTagsForResource":
		return one(str(in.ResourceARN))
	case "PutEvents":
		// Each entry is authorized on its own, as it is accepted
		// (putEventsCall): a refused entry fails, the others go on.
		return nil
	case "CreateConnection", "DescribeConnection", "UpdateConnection", "DeleteConnection", "DeauthorizeConnection":
		return one(s.arns.prefix() + "connection/" + str(in.Name))
	case "CreateApiDestination", "DescribeApiDestination", "UpdateApiDestination", "DeleteApiDestination":
		out := one(s.arns.prefix() + "api-destination/" + str(in.Name))
		if op == "CreateApiDestination" && in.ConnectionArn != nil {
			// The connection is used too; its ARN is checked by name.
			name, _, _ := strings.Cut(strings.TrimPrefix(*in.ConnectionArn, s.arns.prefix()+"connection/"), "/")
			out = append(out, awsapi.Access{Action: action, Resource: s.arns.prefix() + "connection/" + name})
		}
		return out
	case "CreateArchive", "DescribeArchive", "UpdateArchive", "DeleteArchive":
		out := one(s.arns.prefix() + "archive/" + str(in.ArchiveName))
		if op == "CreateArchive" && in.EventSourceArn != nil {
			out = append(out, awsapi.Access{Action: action, Resource: *in.EventSourceArn})
		}
		return out
	case "StartReplay", "DescribeReplay", "CancelReplay":
		out := one(s.arns.prefix() + "replay/" + str(in.ReplayName))
		if op == "StartReplay" && in.EventSourceArn != nil {
			out = append(out, awsapi.Access{Action: action, Resource: *in.EventSourceArn})
		}
		return out
	}
	return one("*")
}

// entryAccess is the permission one PutEvents entry needs.
func (s *Service) entryAccess(bus string, e *putEventsEntry) awsapi.Access {
	return awsapi.Access{Action: "events:PutEvents", Resource: s.arns.bus(bus),
		Context: map[string]string{"events:source": deref(e.Source), "events:detail-type": deref(e.DetailType),
			"events:eventBusInvocation": "false"}}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
