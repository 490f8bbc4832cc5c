package eventbus

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/transform"
)

func pointerTo[T any](v T) *T { return &v }

const (
	testLambdaArn = "arn:aws:lambda:us-east-1:123456789012:function:f"
	testQueueArn  = "arn:aws:sqs:us-east-1:123456789012:q"
	testFIFOArn   = "arn:aws:sqs:us-east-1:123456789012:q.fifo"
)

// testTarget returns a valid target changed by edit.
func testTarget(edit func(*Target)) Target {
	t := Target{Id: "t1", Arn: testLambdaArn}
	if edit != nil {
		edit(&t)
	}
	return t
}

// violation is one expected entry of a constraint-violation message.
type violation struct {
	value            any
	path, constraint string
}

// shapesMessage returns the message validateTargetShapes gives, "" for none.
func shapesMessage(targets []Target) string {
	var v awsapi.Violations
	validateTargetShapes(targets, &v)
	if err := v.Err(); err != nil {
		return err.Message
	}
	return ""
}

// violationsMessage is the message of the given violations, "" for none.
func violationsMessage(vs []violation) string {
	var v awsapi.Violations
	for _, x := range vs {
		v.Add(x.value, x.path, x.constraint)
	}
	if err := v.Err(); err != nil {
		return err.Message
	}
	return ""
}

// Messages recorded from AWS, compared byte for byte.
func TestValidateTargetShapesRecordedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{
			// LocalStack's AWS-validated snapshot (test_events*.snapshot.json).
			name:   "id pattern",
			target: testTarget(func(t *Target) { t.Id = "!@#$@!#$" }),
			want:   `1 validation error detected: Value '!@#$@!#$' at 'targets.1.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+`,
		},
		{
			// A console user's PutTargets error, quoted in a public note.
			// The map is shown in Java HashMap order.
			name: "input paths map keys",
			target: testTarget(func(t *Target) {
				t.InputTransformer = &InputTransformer{
					InputPathsMap: map[string]string{
						"Quem foi?": "$.detail.userIdentity.userName",
						"o que?":    "$.detail.eventName",
						"de onde?":  "$.detail.sourceIPAddress",
					},
					InputTemplate: pointerTo(`"<o que?>"`),
				}
			}),
			want: `1 validation error detected: Value '{de onde?=$.detail.sourceIPAddress, Quem foi?=$.detail.userIdentity.userName, o que?=$.detail.eventName}' at 'targets.1.member.inputTransformer.inputPathsMap' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [A-Za-z0-9\_\-]+]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := shapesMessage([]Target{tt.target}); got != tt.want {
				t.Errorf("message\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestValidateTargetShapes(t *testing.T) {
	t.Parallel()
	const p = "targets.1.member."
	long := func(n int) string { return strings.Repeat("a", n) }
	manyPaths := make(map[string]string, 101)
	for i := range 101 {
		manyPaths[fmt.Sprintf("k%d", i)] = "$.detail"
	}
	headerMap := func(k, v string) func(*Target) {
		return func(t *Target) {
			t.HttpParameters = &HttpParameters{HeaderParameters: map[string]string{k: v}}
		}
	}
	queryMap := func(k, v string) func(*Target) {
		return func(t *Target) {
			t.HttpParameters = &HttpParameters{QueryStringParameters: map[string]string{k: v}}
		}
	}
	pathsMap := func(m map[string]string) func(*Target) {
		return func(t *Target) {
			t.InputTransformer = &InputTransformer{InputPathsMap: m, InputTemplate: pointerTo(`"x"`)}
		}
	}
	tests := []struct {
		name string
		edit func(*Target)
		want []violation
	}{
		{name: "minimal"},
		{
			name: "every member at its limits",
			edit: func(t *Target) {
				t.Id = long(64)
				t.Arn = long(1600)
				t.RoleArn = pointerTo(long(1600))
				t.Input = pointerTo(long(8192))
				t.SqsParameters = &SqsParameters{MessageGroupId: pointerTo(long(100))}
				t.HttpParameters = &HttpParameters{
					PathParameterValues:   []string{"a", " x "},
					HeaderParameters:      map[string]string{long(512): long(512), "X-Id": "$.detail.id", "X-Tab": "a\tb"},
					QueryStringParameters: map[string]string{long(512): long(512), "q": "line\nbreak"},
				}
				t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo(long(1600))}
				t.RetryPolicy = &RetryPolicy{MaximumRetryAttempts: pointerTo(185), MaximumEventAgeInSeconds: pointerTo(86400)}
			},
		},
		{
			name: "input paths map at its limits",
			edit: pathsMap(map[string]string{long(256): long(256), "A-Za_z09": "$"}),
		},
		{name: "id missing", edit: func(t *Target) { t.Id = "" }, want: []violation{{nil, p + "id", awsapi.MustNotBeNull}}},
		{name: "id too long", edit: func(t *Target) { t.Id = long(65) }, want: []violation{{long(65), p + "id", awsapi.MaxLen(64)}}},
		{
			name: "id too long and off pattern",
			edit: func(t *Target) { t.Id = long(64) + "!" },
			want: []violation{
				{long(64) + "!", p + "id", awsapi.MaxLen(64)},
				{long(64) + "!", p + "id", awsapi.MatchPattern(`[\.\-_A-Za-z0-9]+`)},
			},
		},
		{name: "id with newline", edit: func(t *Target) { t.Id = "a\n" }, want: []violation{{"a\n", p + "id", awsapi.MatchPattern(`[\.\-_A-Za-z0-9]+`)}}},
		{name: "arn missing", edit: func(t *Target) { t.Arn = "" }, want: []violation{{nil, p + "arn", awsapi.MustNotBeNull}}},
		{name: "arn too long", edit: func(t *Target) { t.Arn = long(1601) }, want: []violation{{long(1601), p + "arn", awsapi.MaxLen(1600)}}},
		{name: "role arn empty", edit: func(t *Target) { t.RoleArn = pointerTo("") }, want: []violation{{"", p + "roleArn", awsapi.MinLen(1)}}},
		{name: "role arn too long", edit: func(t *Target) { t.RoleArn = pointerTo(long(1601)) }, want: []violation{{long(1601), p + "roleArn", awsapi.MaxLen(1600)}}},
		{name: "input too long", edit: func(t *Target) { t.Input = pointerTo(long(8193)) }, want: []violation{{long(8193), p + "input", awsapi.MaxLen(8192)}}},
		{
			// Lengths count UTF-16 code units, as Java does: 8192 two-byte
			// characters fit, 4097 characters outside the BMP do not.
			name: "input length in UTF-16 units fits",
			edit: func(t *Target) { t.Input = pointerTo(strings.Repeat("é", 8192)) },
		},
		{
			name: "input length in UTF-16 units too long",
			edit: func(t *Target) { t.Input = pointerTo(strings.Repeat("😀", 4097)) },
			want: []violation{{strings.Repeat("😀", 4097), p + "input", awsapi.MaxLen(8192)}},
		},
		{name: "input path at limit", edit: func(t *Target) { t.InputPath = pointerTo(long(256)) }},
		{name: "input path too long", edit: func(t *Target) { t.InputPath = pointerTo(long(257)) }, want: []violation{{long(257), p + "inputPath", awsapi.MaxLen(256)}}},
		{
			name: "input template missing",
			edit: func(t *Target) { t.InputTransformer = &InputTransformer{} },
			want: []violation{{nil, p + "inputTransformer.inputTemplate", awsapi.MustNotBeNull}},
		},
		{
			name: "input template empty",
			edit: func(t *Target) { t.InputTransformer = &InputTransformer{InputTemplate: pointerTo("")} },
			want: []violation{{"", p + "inputTransformer.inputTemplate", awsapi.MinLen(1)}},
		},
		{
			name: "input template too long",
			edit: func(t *Target) { t.InputTransformer = &InputTransformer{InputTemplate: pointerTo(long(8193))} },
			want: []violation{{long(8193), p + "inputTransformer.inputTemplate", awsapi.MaxLen(8192)}},
		},
		{
			name: "input paths map too many entries",
			edit: pathsMap(manyPaths),
			want: []violation{{javaMapString(manyPaths), p + "inputTransformer.inputPathsMap", awsapi.MaxLen(100)}},
		},
		{
			name: "input paths map reserved name",
			edit: pathsMap(map[string]string{"aws.events.event": "$.detail"}),
			want: []violation{{"{aws.events.event=$.detail}", p + "inputTransformer.inputPathsMap",
				`Map keys must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [A-Za-z0-9\_\-]+]`}},
		},
		{
			name: "input paths map key too long",
			edit: pathsMap(map[string]string{long(257): "$"}),
			want: []violation{{"{" + long(257) + "=$}", p + "inputTransformer.inputPathsMap",
				`Map keys must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [A-Za-z0-9\_\-]+]`}},
		},
		{
			name: "input paths map value too long",
			edit: pathsMap(map[string]string{"k": long(257)}),
			want: []violation{{"{k=" + long(257) + "}", p + "inputTransformer.inputPathsMap",
				"Map value must satisfy constraint: [Member must have length less than or equal to 256]"}},
		},
		{
			name: "input paths map keys before values",
			edit: pathsMap(map[string]string{"bad key": long(257)}),
			want: []violation{
				{"{bad key=" + long(257) + "}", p + "inputTransformer.inputPathsMap",
					`Map keys must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [A-Za-z0-9\_\-]+]`},
				{"{bad key=" + long(257) + "}", p + "inputTransformer.inputPathsMap",
					"Map value must satisfy constraint: [Member must have length less than or equal to 256]"},
			},
		},
		{
			name: "message group id too long",
			edit: func(t *Target) { t.SqsParameters = &SqsParameters{MessageGroupId: pointerTo(long(101))} },
			want: []violation{{long(101), p + "sqsParameters.messageGroupId", awsapi.MaxLen(100)}},
		},
		{
			name: "path parameter values blank, empty, multi-line",
			edit: func(t *Target) {
				t.HttpParameters = &HttpParameters{PathParameterValues: []string{"ok", " \t", "", "a\nb"}}
			},
			want: []violation{
				{" \t", p + "httpParameters.pathParameterValues.2.member", awsapi.MatchPattern(`^(?!\s*$).+`)},
				{"", p + "httpParameters.pathParameterValues.3.member", awsapi.MatchPattern(`^(?!\s*$).+`)},
				{"a\nb", p + "httpParameters.pathParameterValues.4.member", awsapi.MatchPattern(`^(?!\s*$).+`)},
			},
		},
		{
			name: "header key off pattern",
			edit: headerMap("bad key", "v"),
			want: []violation{{"{bad key=v}", p + "httpParameters.headerParameters",
				"Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: ^[!#$%&'*+-.^_`|~0-9a-zA-Z]+$]"}},
		},
		{
			name: "header key too long",
			edit: headerMap(long(513), "v"),
			want: []violation{{"{" + long(513) + "=v}", p + "httpParameters.headerParameters",
				"Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: ^[!#$%&'*+-.^_`|~0-9a-zA-Z]+$]"}},
		},
		{
			name: "header value empty",
			edit: headerMap("X-A", ""),
			want: []violation{{"{X-A=}", p + "httpParameters.headerParameters",
				`Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: ^[ \t]*[\x20-\x7E]+([ \t]+[\x20-\x7E]+)*[ \t]*$]`}},
		},
		{
			name: "header value control character",
			edit: headerMap("X-A", "a\x01"),
			want: []violation{{"{X-A=a\x01}", p + "httpParameters.headerParameters",
				`Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: ^[ \t]*[\x20-\x7E]+([ \t]+[\x20-\x7E]+)*[ \t]*$]`}},
		},
		{
			name: "header value too long",
			edit: headerMap("X-A", long(513)),
			want: []violation{{"{X-A=" + long(513) + "}", p + "httpParameters.headerParameters",
				`Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: ^[ \t]*[\x20-\x7E]+([ \t]+[\x20-\x7E]+)*[ \t]*$]`}},
		},
		{
			name: "query key empty",
			edit: queryMap("", "v"),
			want: []violation{{"{=v}", p + "httpParameters.queryStringParameters",
				`Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: [^\x00-\x1F\x7F]+]`}},
		},
		{
			name: "query key control character",
			edit: queryMap("a\x7f", "v"),
			want: []violation{{"{a\x7f=v}", p + "httpParameters.queryStringParameters",
				`Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: [^\x00-\x1F\x7F]+]`}},
		},
		{
			name: "query value tab",
			edit: queryMap("q", "a\tb"),
			want: []violation{{"{q=a\tb}", p + "httpParameters.queryStringParameters",
				`Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: [^\x00-\x09\x0B\x0C\x0E-\x1F\x7F]+]`}},
		},
		{
			name: "query value too long",
			edit: queryMap("q", long(513)),
			want: []violation{{"{q=" + long(513) + "}", p + "httpParameters.queryStringParameters",
				`Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: [^\x00-\x09\x0B\x0C\x0E-\x1F\x7F]+]`}},
		},
		{
			name: "dead-letter arn empty",
			edit: func(t *Target) { t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo("")} },
			want: []violation{{"", p + "deadLetterConfig.arn", awsapi.MinLen(1)}},
		},
		{
			name: "dead-letter arn too long",
			edit: func(t *Target) { t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo(long(1601))} },
			want: []violation{{long(1601), p + "deadLetterConfig.arn", awsapi.MaxLen(1600)}},
		},
		{
			name: "retry policy lower bounds",
			edit: func(t *Target) {
				t.RetryPolicy = &RetryPolicy{MaximumRetryAttempts: pointerTo(0), MaximumEventAgeInSeconds: pointerTo(60)}
			},
		},
		{
			name: "retry policy below range",
			edit: func(t *Target) {
				t.RetryPolicy = &RetryPolicy{MaximumRetryAttempts: pointerTo(-1), MaximumEventAgeInSeconds: pointerTo(59)}
			},
			want: []violation{
				{-1, p + "retryPolicy.maximumRetryAttempts", awsapi.MinValue(0)},
				{59, p + "retryPolicy.maximumEventAgeInSeconds", awsapi.MinValue(60)},
			},
		},
		{
			name: "retry policy above range",
			edit: func(t *Target) {
				t.RetryPolicy = &RetryPolicy{MaximumRetryAttempts: pointerTo(186), MaximumEventAgeInSeconds: pointerTo(86401)}
			},
			want: []violation{
				{186, p + "retryPolicy.maximumRetryAttempts", awsapi.MaxValue(185)},
				{86401, p + "retryPolicy.maximumEventAgeInSeconds", awsapi.MaxValue(86400)},
			},
		},
		{
			name: "members in model order",
			edit: func(t *Target) {
				t.Id = ""
				t.RetryPolicy = &RetryPolicy{MaximumRetryAttempts: pointerTo(186)}
				t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo("")}
				t.HttpParameters = &HttpParameters{PathParameterValues: []string{""}}
				t.SqsParameters = &SqsParameters{MessageGroupId: pointerTo(long(101))}
				t.InputPath = pointerTo(long(257))
				t.RoleArn = pointerTo("")
			},
			want: []violation{
				{nil, p + "id", awsapi.MustNotBeNull},
				{"", p + "roleArn", awsapi.MinLen(1)},
				{long(257), p + "inputPath", awsapi.MaxLen(256)},
				{long(101), p + "sqsParameters.messageGroupId", awsapi.MaxLen(100)},
				{"", p + "httpParameters.pathParameterValues.1.member", awsapi.MatchPattern(`^(?!\s*$).+`)},
				{"", p + "deadLetterConfig.arn", awsapi.MinLen(1)},
				{186, p + "retryPolicy.maximumRetryAttempts", awsapi.MaxValue(185)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := shapesMessage([]Target{testTarget(tt.edit)})
			if want := violationsMessage(tt.want); got != want {
				t.Errorf("message\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestValidateTargetShapesIndexesTargets(t *testing.T) {
	t.Parallel()
	targets := []Target{
		testTarget(nil),
		testTarget(func(t *Target) { t.Arn = "" }),
		testTarget(func(t *Target) { t.Id = "a b" }),
	}
	want := violationsMessage([]violation{
		{nil, "targets.2.member.arn", awsapi.MustNotBeNull},
		{"a b", "targets.3.member.id", awsapi.MatchPattern(`[\.\-_A-Za-z0-9]+`)},
	})
	if got := shapesMessage(targets); got != want {
		t.Errorf("message\n got %q\nwant %q", got, want)
	}
}

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	transformer := func(paths map[string]string, tmpl string) func(*Target) {
		return func(t *Target) {
			t.InputTransformer = &InputTransformer{InputPathsMap: paths, InputTemplate: pointerTo(tmpl)}
		}
	}
	const (
		onlyOne     = "Only one of Input, InputPath, or InputTransformer must be provided for target t1."
		notJSON     = "Input for target t1 is not a valid JSON text."
		badPath     = "InputPath for target t1 is invalid."
		sqsParamsTo = "Parameter(s) SqsParameters must be specified for target: t1."
	)
	tests := []struct {
		name string
		edit func(*Target)
		want string // "" for no error
	}{
		{name: "plain target"},
		// moto's and LocalStack's wording (UNVERIFIED against AWS).
		{name: "not an ARN", edit: func(t *Target) { t.Arn = "not-an-arn" }, want: "Parameter not-an-arn is not valid. Reason: Provided Arn is not in correct format."},
		{name: "ARN without a resource", edit: func(t *Target) { t.Arn = "arn:aws:sqs:us-east-1:123456789012:" }, want: "Parameter arn:aws:sqs:us-east-1:123456789012: is not valid. Reason: Provided Arn is not in correct format."},
		{name: "ARN with too few parts", edit: func(t *Target) { t.Arn = "arn:x" }, want: "Parameter arn:x is not valid. Reason: Provided Arn is not in correct format."},
		{name: "ARN with a short account", edit: func(t *Target) { t.Arn = "arn:aws:sqs:us-east-1:1234:q" }, want: "Parameter arn:aws:sqs:us-east-1:1234:q is not valid. Reason: Provided Arn is not in correct format."},
		{name: "ARN checked first", edit: func(t *Target) { t.Arn = "x"; t.Input = pointerTo("{"); t.InputPath = pointerTo("$") }, want: "Parameter x is not valid. Reason: Provided Arn is not in correct format."},
		{name: "ARN without region and account", edit: func(t *Target) { t.Arn = "arn:aws:s3:::bucket" }},
		{name: "ARN of another partition", edit: func(t *Target) { t.Arn = "arn:aws-cn:sqs:cn-north-1:123456789012:q" }},
		{name: "input alone", edit: func(t *Target) { t.Input = pointerTo(`{"a":1}`) }},
		{name: "input path alone", edit: func(t *Target) { t.InputPath = pointerTo("$.detail") }},
		{name: "input transformer alone", edit: transformer(map[string]string{"a": "$.detail.a"}, `{"a": <a>}`)},
		// Recorded from AWS (test_events_inputs.snapshot.json).
		{
			name: "input and input path",
			edit: func(t *Target) { t.Input = pointerTo(`{}`); t.InputPath = pointerTo("$") },
			want: onlyOne,
		},
		{
			name: "input and input transformer",
			edit: func(t *Target) {
				transformer(nil, `"x"`)(t)
				t.Input = pointerTo(`{}`)
			},
			want: onlyOne,
		},
		{
			name: "input path and input transformer",
			edit: func(t *Target) {
				transformer(nil, `"x"`)(t)
				t.InputPath = pointerTo("$")
			},
			want: onlyOne,
		},
		{
			name: "exclusivity checked before JSON",
			edit: func(t *Target) { t.Input = pointerTo(`{`); t.InputPath = pointerTo("$") },
			want: onlyOne,
		},
		// Wording recorded from AWS through CloudFormation and the console.
		{name: "input JSON string", edit: func(t *Target) { t.Input = pointerTo(`"text"`) }},
		{name: "input JSON number", edit: func(t *Target) { t.Input = pointerTo(`5`) }},
		{name: "input not JSON", edit: func(t *Target) { t.Input = pointerTo(`{"a":`) }, want: notJSON},
		{name: "input bare text", edit: func(t *Target) { t.Input = pointerTo(`hello`) }, want: notJSON},
		{name: "input empty", edit: func(t *Target) { t.Input = pointerTo(``) }, want: notJSON},
		{name: "input path root", edit: func(t *Target) { t.InputPath = pointerTo("$") }},
		{name: "input path index", edit: func(t *Target) { t.InputPath = pointerTo("$.detail.items[0]") }},
		{name: "input path without $", edit: func(t *Target) { t.InputPath = pointerTo("detail") }, want: badPath},
		{name: "input path bracket member", edit: func(t *Target) { t.InputPath = pointerTo("$.detail['a b']") }, want: badPath},
		{name: "input path recursive descent", edit: func(t *Target) { t.InputPath = pointerTo("$..id") }, want: badPath},
		{name: "input paths map value not a path", edit: transformer(map[string]string{"a": "detail.a"}, `"<a>"`), want: badPath},
		{name: "input paths map value empty", edit: transformer(map[string]string{"a": ""}, `"<a>"`), want: badPath},
		// Recorded from AWS (test_events_inputs.snapshot.json).
		{
			name: "undefined placeholder",
			edit: transformer(map[string]string{"a": "$.detail.a"}, `{"a": <a>, "b": <notdefinedkey>}`),
			want: "InputTemplate for target t1 contains invalid placeholder notdefinedkey.",
		},
		{
			name: "placeholder of another case",
			edit: transformer(map[string]string{"a": "$.detail.a"}, `"<A>"`),
			want: "InputTemplate for target t1 contains invalid placeholder A.",
		},
		{
			name: "predefined variables",
			edit: transformer(nil, `{"arn": "<aws.events.rule-arn>", "name": "<aws.events.rule-name>", "t": "<aws.events.event.ingestion-time>", "e": <aws.events.event>, "j": <aws.events.event.json>}`),
		},
		{name: "angle brackets that are not placeholders", edit: transformer(nil, `"a < b > c, <not a placeholder>"`)},
		{
			name: "dead-letter queue",
			edit: func(t *Target) { t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo(testQueueArn)} },
		},
		{
			name: "dead-letter FIFO queue in another partition",
			edit: func(t *Target) {
				t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:d.fifo")}
			},
		},
		{
			name: "dead-letter topic",
			edit: func(t *Target) {
				t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo("arn:aws:sns:us-east-1:123456789012:topic")}
			},
			want: "Parameter DeadLetterConfig.Arn for target t1 is not a valid SQS queue ARN: arn:aws:sns:us-east-1:123456789012:topic.",
		},
		{
			name: "dead-letter short account",
			edit: func(t *Target) {
				t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo("arn:aws:sqs:us-east-1:1234:q")}
			},
			want: "Parameter DeadLetterConfig.Arn for target t1 is not a valid SQS queue ARN: arn:aws:sqs:us-east-1:1234:q.",
		},
		{
			name: "dead-letter queue name too long",
			edit: func(t *Target) {
				t.DeadLetterConfig = &DeadLetterConfig{Arn: pointerTo("arn:aws:sqs:us-east-1:123456789012:" + strings.Repeat("q", 81))}
			},
			want: "Parameter DeadLetterConfig.Arn for target t1 is not a valid SQS queue ARN: arn:aws:sqs:us-east-1:123456789012:" + strings.Repeat("q", 81) + ".",
		},
		// Recorded from AWS through CloudFormation; moto has the same text.
		{name: "FIFO queue without SqsParameters", edit: func(t *Target) { t.Arn = testFIFOArn }, want: sqsParamsTo},
		{
			name: "FIFO queue with empty SqsParameters",
			edit: func(t *Target) { t.Arn = testFIFOArn; t.SqsParameters = &SqsParameters{} },
			want: sqsParamsTo,
		},
		{
			name: "FIFO queue with a message group",
			edit: func(t *Target) {
				t.Arn = testFIFOArn
				t.SqsParameters = &SqsParameters{MessageGroupId: pointerTo("g")}
			},
		},
		{name: "standard queue", edit: func(t *Target) { t.Arn = testQueueArn }},
		{
			name: "SqsParameters on a function",
			edit: func(t *Target) { t.SqsParameters = &SqsParameters{MessageGroupId: pointerTo("g")} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := testTarget(tt.edit)
			err := checkTarget(&target)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkTarget() = %v, want nil", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("checkTarget() = nil, want %q", tt.want)
			case err.Code != awsapi.CodeValidation || err.Message != tt.want || err.HTTPStatus() != 400:
				t.Fatalf("checkTarget() = %s (%d), want ValidationException: %s (400)", err, err.HTTPStatus(), tt.want)
			}
		})
	}
}

func TestValidJSONPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want bool
	}{
		{"$", true},
		{"$.detail", true},
		{"$.detail-type", true},
		{"$.detail.items[0]", true},
		{"$.detail.items[12].id", true},
		{"$.detail.*", true},
		{"$.detail.items[*]", true},
		{"", false},
		{"detail", false},
		{"$detail", false},
		{"$.", false},
		{"$.detail.", false},
		{"$..id", false},
		{"$.detail['odd key']", false},
		{`$.detail["odd key"]`, false},
		{"$.detail.items[-1]", false},
		{"$.detail.items[0:2]", false},
		{"$.detail[?(@.a)]", false},
		{"$.detail.items[0", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			if got := ValidJSONPath(tt.path); got != tt.want {
				t.Errorf("ValidJSONPath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestJavaHash(t *testing.T) {
	t.Parallel()
	// Values of Java's String.hashCode.
	tests := []struct {
		s    string
		want int32
	}{
		{"", 0},
		{"hello", 99162322},
		{"Aa", 2112},
		{"BB", 2112},
		{"😀", 1772899},
		{"polygenelubricants", -2147483648},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			t.Parallel()
			if got := int32(javaHash(tt.s)); got != tt.want {
				t.Errorf("javaHash(%q) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

func TestJavaMapString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    map[string]string
		want string
	}{
		{name: "empty", m: map[string]string{}, want: "{}"},
		// "Aa" and "BB" share a bucket; Java keeps arrival order there,
		// we sort.
		{name: "shared bucket", m: map[string]string{"BB": "2", "Aa": "1"}, want: "{Aa=1, BB=2}"},
		// Hashes 97 and 113 share bucket 1 of 16 but not of 32, the table
		// size from 13 entries on.
		{name: "small table", m: map[string]string{"a": "", "q": ""}, want: "{a=, q=}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := javaMapString(tt.m); got != tt.want {
				t.Errorf("javaMapString() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("grown table", func(t *testing.T) {
		t.Parallel()
		m := map[string]string{"q": "", "a": ""}
		for _, k := range []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
			m[k] = ""
		}
		// 13 entries: 32 buckets, "a" (97) in bucket 1, "q" (113) in 17.
		got := javaMapString(m)
		if strings.Index(got, "a=") > strings.Index(got, "q=") || !strings.HasPrefix(got, "{a=, ") {
			t.Errorf("javaMapString() = %q, want a first and q after the others", got)
		}
		if !strings.HasSuffix(got, ", q=}") {
			t.Errorf("javaMapString() = %q, want q last", got)
		}
	})
}

// FuzzCheckTarget decodes a PutTargets Targets list and runs both stages on
// it: neither may panic, both report only ValidationExceptions, the shape
// message is deterministic, and every path ValidJSONPath accepts is one
// transform can evaluate.
func FuzzCheckTarget(f *testing.F) {
	for _, seed := range []string{
		`[{"Id":"t1","Arn":"arn:aws:lambda:us-east-1:123456789012:function:f"}]`,
		`[{"Id":"!@#$","Arn":""},{"Id":"a","Arn":"b","Input":"{\"a\":1}","InputPath":"$.detail"}]`,
		`[{"Id":"t","Arn":"arn:aws:sqs:us-east-1:123456789012:q.fifo","SqsParameters":{}}]`,
		`[{"Id":"t","Arn":"a","InputTransformer":{"InputPathsMap":{"a":"$.detail.a","aws.events.event":"$"},"InputTemplate":"{\"a\": <a>, \"b\": <b>}"}}]`,
		`[{"Id":"t","Arn":"a","InputTransformer":{"InputPathsMap":{"k":"$.detail['x']"},"InputTemplate":""}}]`,
		`[{"Id":"t","Arn":"a","HttpParameters":{"PathParameterValues":["", " "],"HeaderParameters":{"bad key":""},"QueryStringParameters":{"":"\t"}}}]`,
		`[{"Id":"t","Arn":"a","RetryPolicy":{"MaximumRetryAttempts":-1,"MaximumEventAgeInSeconds":999999},"DeadLetterConfig":{"Arn":"arn:aws:sns:us-east-1:123456789012:t"}}]`,
		`[{"Id":"😀","Arn":"a","Input":"\"\u2028\"","InputPath":"$..x"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var targets []Target
		if json.Unmarshal(data, &targets) != nil {
			return
		}
		first := shapesMessage(targets)
		if again := shapesMessage(targets); again != first {
			t.Fatalf("shape message not deterministic:\n%s\n%s", first, again)
		}
		if first != "" && !strings.Contains(first, " validation error") {
			t.Fatalf("shape message %q", first)
		}
		for i := range targets {
			tg := &targets[i]
			if err := checkTarget(tg); err != nil && err.Code != awsapi.CodeValidation {
				t.Fatalf("checkTarget() = %v", err)
			}
			paths := []*string{tg.InputPath}
			if it := tg.InputTransformer; it != nil {
				for _, p := range it.InputPathsMap {
					paths = append(paths, &p)
				}
			}
			for _, p := range paths {
				if p != nil && ValidJSONPath(*p) && !transform.ValidPath(*p) {
					t.Fatalf("ValidJSONPath(%q) but transform cannot evaluate it", *p)
				}
			}
		}
	})
}
