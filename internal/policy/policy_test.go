package policy

import (
	"errors"
	"testing"
)

const (
	queueArn = "arn:aws:sqs:us-east-1:123456789012:SampleDLQ"
	ruleArn  = "arn:aws:events:us-east-1:123456789012:rule/MyTestRule"
	events   = "events.amazonaws.com"
)

// The queue policy of EventBridge's dead-letter queue documentation.
const dlqPolicy = `{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "Dead-letter queue permissions",
    "Effect": "Allow",
    "Principal": {"Service": "events.amazonaws.com"},
    "Action": "sqs:SendMessage",
    "Resource": "arn:aws:sqs:us-east-1:123456789012:SampleDLQ",
    "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/MyTestRule"}}
  }]
}`

func send(src string) Request {
	ctx := map[string]string{"aws:SourceAccount": "123456789012"}
	if src != "" {
		ctx["aws:SourceArn"] = src
	}
	return Request{Principal: Principal{Service: events}, Action: "sqs:SendMessage", Resource: queueArn, Context: ctx}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		policy string
		req    Request
		want   Decision
	}{
		{"documented DLQ policy, its rule", dlqPolicy, send(ruleArn), Allow},
		{"documented DLQ policy, another rule", dlqPolicy, send("arn:aws:events:us-east-1:123456789012:rule/Other"), NotApplicable},
		{"documented DLQ policy, no source", dlqPolicy, send(""), NotApplicable},
		{"documented DLQ policy, another action", dlqPolicy, Request{Principal: Principal{Service: events}, Action: "sqs:DeleteMessage", Resource: queueArn,
			Context: map[string]string{"aws:SourceArn": ruleArn}}, NotApplicable},
		{"documented DLQ policy, another service", dlqPolicy, Request{Principal: Principal{Service: "sns.amazonaws.com"}, Action: "sqs:SendMessage", Resource: queueArn,
			Context: map[string]string{"aws:SourceArn": ruleArn}}, NotApplicable},
		{"action case-insensitive, wildcard", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"SQS:Send*","Resource":"*"}}`,
			send(ruleArn), Allow},
		{"sqs:* and ArnLike on rules", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["events.amazonaws.com"]},"Action":["sqs:*"],
			"Resource":"arn:aws:sqs:*:123456789012:*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:events:*:123456789012:rule/*"}}}]}`, send(ruleArn), Allow},
		{"ArnLike with a trailing wildcard", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage",
			"Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:events:us-east-1:*"}}}]}`, send(ruleArn), Allow},
		{"explicit deny wins", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},
			{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sqs:SendMessage","Resource":"*"}]}`, send(ruleArn), Deny},
		{"StringEquals on SourceAccount", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage",
			"Condition":{"StringEquals":{"AWS:SOURCEACCOUNT":"123456789012"}}}]}`, send(ruleArn), Allow},
		{"StringEquals on another account", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage",
			"Condition":{"StringEquals":{"aws:SourceAccount":"999999999999"}}}]}`, send(ruleArn), NotApplicable},
		{"negated operator holds for a missing key", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sqs:SendMessage",
			"Condition":{"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}}]}`, send(ruleArn), Deny},
		{"IfExists holds for a missing key", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage",
			"Condition":{"ArnEqualsIfExists":{"aws:SourceArn":"arn:aws:events:us-east-1:123456789012:rule/Other"}}}]}`, send(""), Allow},
		{"IfExists checks a present key", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage",
			"Condition":{"ArnEqualsIfExists":{"aws:SourceArn":"arn:aws:events:us-east-1:123456789012:rule/Other"}}}]}`, send(ruleArn), NotApplicable},
		{"NotAction", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","NotAction":"sqs:Delete*","Resource":"*"}]}`, send(ruleArn), Allow},
		{"NotResource", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","NotResource":"arn:aws:sqs:us-east-1:123456789012:Sample*"}]}`,
			send(ruleArn), NotApplicable},
		{"account principal does not cover a service", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}]}`,
			send(ruleArn), NotApplicable},
		{"Null condition", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"Null":{"aws:SourceArn":"false"}}}]}`,
			send(ruleArn), Allow},
		{"no statements", `{"Version":"2012-10-17","Statement":[]}`, send(ruleArn), NotApplicable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Evaluate(c.req); got != c.want {
				t.Errorf("Evaluate = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for doc, want := range map[string]string{
		``:                         "Syntax errors in policy.",
		`[]`:                       "Syntax errors in policy.",
		`{"Version":1}`:            "Syntax errors in policy.",
		`{"Version":"2012-10-17"}`: "Policy document should not be empty or missing the Statement element.",
		`{"Version":"2010-01-01","Statement":[]}`:                                           "The policy must contain a valid version string",
		`{"Statement":[{"Action":"sqs:*"}]}`:                                                "Missing required field Effect",
		`{"Statement":[{"Effect":"Maybe","Action":"sqs:*"}]}`:                               "Invalid effect: Maybe",
		`{"Statement":[{"Effect":"Allow"}]}`:                                                "Policy statement must contain actions.",
		`{"Statement":[{"Effect":"Allow","Action":"send"}]}`:                                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
		`{"Statement":[{"Effect":"Allow","Action":"a:b","Foo":1}]}`:                         "Statement contains an unknown element: Foo",
		`{"Statement":[{"Effect":"Allow","Action":"a:b","Principal":1}]}`:                   "Syntax errors in policy.",
		`{"Statement":[{"Effect":"Allow","Action":"a:b","Condition":{"Fuzzy":{"k":"v"}}}]}`: "Invalid Condition type : Fuzzy",
		`{"Statement":[]} {}`:                                                               "Syntax errors in policy.",
	} {
		_, err := Parse(doc)
		var perr *Error
		if !errors.As(err, &perr) || perr.Reason != want {
			t.Errorf("Parse(%s) = %v, want %q", doc, err, want)
		}
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"", "", true}, {"", "a", false}, {"**", "x", true},
	} {
		if got := Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(dlqPolicy)
	f.Add(`{"Statement":{"Effect":"Deny","NotAction":["a:*"],"Condition":{"NullIfExists":{"k":true}}}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		for _, k := range []Kind{ResourcePolicy, IdentityPolicy, TrustPolicy} {
			if p, err := ParseKind(doc, k); err == nil {
				p.Evaluate(send(ruleArn))
			}
		}
		p, err := Parse(doc)
		if err != nil {
			return
		}
		EvaluateAll([]*Policy{p, p}, send(ruleArn))
	})
}

// TestRolePolicies evaluates the role documents EventBridge's API
// destination documentation shows: the trust policy for
// events.amazonaws.com and the permission to invoke one destination (its
// ARN ends with a generated id, hence the wildcard).
func TestRolePolicies(t *testing.T) {
	t.Parallel()
	trust, err := ParseKind(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, TrustPolicy)
	if err != nil {
		t.Fatal(err)
	}
	invoke, err := ParseKind(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:InvokeApiDestination"],
		"Resource":["arn:aws:events:us-east-1:123456789012:api-destination/MyDestination/*"]}]}`, IdentityPolicy)
	if err != nil {
		t.Fatal(err)
	}
	// IAM's documented NotAction pattern: deny everything except IAM.
	denyAllButIAM, err := ParseKind(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}}`, IdentityPolicy)
	if err != nil {
		t.Fatal(err)
	}
	role := "arn:aws:iam::123456789012:role/Invoker"
	dest := "arn:aws:events:us-east-1:123456789012:api-destination/MyDestination/a1b2c3"
	cases := []struct {
		name     string
		policies []*Policy
		req      Request
		want     Decision
	}{
		{"events assumes the role", []*Policy{trust}, Request{Principal: Principal{Service: "events.amazonaws.com"}, Action: "sts:AssumeRole", Resource: role}, Allow},
		{"lambda does not", []*Policy{trust}, Request{Principal: Principal{Service: "lambda.amazonaws.com"}, Action: "sts:AssumeRole", Resource: role}, NotApplicable},
		{"invoke the destination", []*Policy{invoke}, Request{Principal: Principal{Arn: role}, Action: "events:InvokeApiDestination", Resource: dest}, Allow},
		{"action names are case-insensitive", []*Policy{invoke}, Request{Principal: Principal{Arn: role}, Action: "Events:invokeApiDestination", Resource: dest}, Allow},
		{"another destination", []*Policy{invoke}, Request{Principal: Principal{Arn: role}, Action: "events:InvokeApiDestination",
			Resource: "arn:aws:events:us-east-1:123456789012:api-destination/Other/a1b2c3"}, NotApplicable},
		{"resource names are case-sensitive", []*Policy{invoke}, Request{Principal: Principal{Arn: role}, Action: "events:InvokeApiDestination",
			Resource: "arn:aws:events:us-east-1:123456789012:api-destination/mydestination/a1b2c3"}, NotApplicable},
		{"another action", []*Policy{invoke}, Request{Principal: Principal{Arn: role}, Action: "events:PutEvents", Resource: dest}, NotApplicable},
		{"a deny elsewhere wins", []*Policy{invoke, denyAllButIAM}, Request{Principal: Principal{Arn: role}, Action: "events:InvokeApiDestination", Resource: dest}, Deny},
		{"NotAction leaves iam alone", []*Policy{denyAllButIAM}, Request{Principal: Principal{Arn: role}, Action: "iam:GetRole", Resource: role}, NotApplicable},
	}
	for _, c := range cases {
		if got := EvaluateAll(c.policies, c.req); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
