package eventbus

import (
	"fmt"
	"strings"
)

// arns builds and parses the ARNs of one account and region.
type arns struct {
	region, account string
}

func (a arns) prefix() string { return fmt.Sprintf("arn:aws:events:%s:%s:", a.region, a.account) }

func (a arns) bus(name string) string { return a.prefix() + "event-bus/" + name }

// rule returns a rule's ARN: rules on the default bus are rule/<name>, on
// other buses rule/<bus>/<name>.
func (a arns) rule(bus, name string) string {
	if bus == defaultBus {
		return a.prefix() + "rule/" + name
	}
	return a.prefix() + "rule/" + bus + "/" + name
}

// busName resolves an EventBusName parameter, a name or a bus ARN, to a bus
// name; empty means the default bus. ok is false for an ARN of another
// account, region or resource type.
func (a arns) busName(nameOrArn *string) (name string, ok bool) {
	if nameOrArn == nil || *nameOrArn == "" {
		return defaultBus, true
	}
	s := *nameOrArn
	if !strings.HasPrefix(s, "arn:") {
		return s, true
	}
	rest, found := strings.CutPrefix(s, a.prefix()+"event-bus/")
	if !found || rest == "" {
		return "", false
	}
	return rest, true
}

// resource resolves a tagging ARN to a bus or a rule.
func (a arns) resource(arn string) (bus, rule string, ok bool) {
	rest, found := strings.CutPrefix(arn, a.prefix())
	if !found {
		return "", "", false
	}
	if name, found := strings.CutPrefix(rest, "event-bus/"); found && name != "" {
		return name, "", true
	}
	if r, found := strings.CutPrefix(rest, "rule/"); found && r != "" {
		if b, n, two := strings.Cut(r, "/"); two {
			return b, n, n != ""
		}
		return defaultBus, r, true
	}
	return "", "", false
}
