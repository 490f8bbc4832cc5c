package eventbus

// PutTargets validation in two stages, as AWS runs it:
//
//  1. validateTargetShapes: the constraints of the API model (events
//     2015-10-07, botocore service-2.json), which AWS's service framework
//     checks before the operation runs. Every violation of the request is
//     collected and reported together.
//  2. checkTarget: the rules of the operation itself, checked once the
//     shapes pass. The first broken rule is reported.
//
// Wordings are AWS's where a real response was recorded; the others are
// marked UNVERIFIED.

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/transform"
)

// Patterns of the API model, spelled as the model (and so AWS's messages)
// spell them.
const (
	targetIDPattern      = `[\.\-_A-Za-z0-9]+`
	pathKeyPattern       = `[A-Za-z0-9\_\-]+`
	headerKeyPattern     = "^[!#$%&'*+-.^_`|~0-9a-zA-Z]+$"
	headerValuePattern   = `^[ \t]*[\x20-\x7E]+([ \t]+[\x20-\x7E]+)*[ \t]*$`
	queryKeyPattern      = `[^\x00-\x1F\x7F]+`
	queryValuePattern    = `[^\x00-\x09\x0B\x0C\x0E-\x1F\x7F]+`
	pathParameterPattern = `^(?!\s*$).+`
)

// stringShape is a string shape of the model: length bounds (in UTF-16
// code units, as Java counts them; max 0 means none) and a pattern that the
// whole value must match.
type stringShape struct {
	min, max int
	pattern  string            // as the model spells it; "" means none
	match    func(string) bool // implements pattern
}

// wholeMatch compiles a model pattern to match whole values, as AWS
// applies it.
func wholeMatch(pattern string) func(string) bool {
	return regexp.MustCompile(`^(?:` + pattern + `)$`).MatchString
}

var (
	targetIDShape      = stringShape{min: 1, max: 64, pattern: targetIDPattern, match: wholeMatch(targetIDPattern)}
	arnShape           = stringShape{min: 1, max: 1600} // TargetArn, RoleArn, ResourceArn
	inputShape         = stringShape{max: 8192}         // TargetInput
	inputPathShape     = stringShape{max: 256}          // TargetInputPath
	inputTemplateShape = stringShape{min: 1, max: 8192} // TransformerInput
	pathKeyShape       = stringShape{min: 1, max: 256, pattern: pathKeyPattern, match: wholeMatch(pathKeyPattern)}
	messageGroupShape  = stringShape{max: 100}
	headerKeyShape     = stringShape{max: 512, pattern: headerKeyPattern, match: wholeMatch(headerKeyPattern)}
	headerValueShape   = stringShape{max: 512, pattern: headerValuePattern, match: wholeMatch(headerValuePattern)}
	queryKeyShape      = stringShape{max: 512, pattern: queryKeyPattern, match: wholeMatch(queryKeyPattern)}
	queryValueShape    = stringShape{max: 512, pattern: queryValuePattern, match: wholeMatch(queryValuePattern)}
	// The lookahead of ^(?!\s*$).+ is beyond Go's regexp, so it is spelled
	// out in validPathParameter.
	pathParameterShape = stringShape{pattern: pathParameterPattern, match: validPathParameter}
)

// Limits of the model that are not string shapes.
const (
	maxInputPaths = 100 // TransformerPaths entries
	minRetries    = 0   // MaximumRetryAttempts
	maxRetries    = 185
	minEventAge   = 60 // MaximumEventAgeInSeconds
	maxEventAge   = 86400
)

// violations returns the constraints s breaks, length before pattern.
// (AWS's own order between the two varies from response to response.)
func (sh stringShape) violations(s string) []string {
	var out []string
	switch n := javaLen(s); {
	case n < sh.min:
		out = append(out, awsapi.MinLen(sh.min))
	case sh.max > 0 && n > sh.max:
		out = append(out, awsapi.MaxLen(sh.max))
	}
	if sh.match != nil && !sh.match(s) {
		out = append(out, awsapi.MatchPattern(sh.pattern))
	}
	return out
}

// describe lists every constraint of the shape in the order AWS lists them
// for map keys and values: maximum, minimum, pattern.
func (sh stringShape) describe() string {
	var parts []string
	if sh.max > 0 {
		parts = append(parts, awsapi.MaxLen(sh.max))
	}
	if sh.min > 0 {
		parts = append(parts, awsapi.MinLen(sh.min))
	}
	if sh.pattern != "" {
		parts = append(parts, awsapi.MatchPattern(sh.pattern))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// validateTargetShapes records the model-constraint violations of the
// PutTargets Targets list with AWS's member paths, such as
// "targets.1.member.id" (1-based) or
// "targets.1.member.retryPolicy.maximumRetryAttempts", in the order of the
// model's members.
//
// Target.Id and Target.Arn are plain strings, so an empty one is reported
// as missing ("Member must not be null"); AWS would report an empty but
// present one against its length and pattern.
//
// A map is reported once for all its keys and once for all its values, with
// the whole map as the value, as AWS reports it:
//
//	Value '{a.b=$.x}' at 'targets.1.member.inputTransformer.inputPathsMap' failed to satisfy constraint: Map keys must satisfy constraint: [...]
//
// The reserved names of the input transformer (aws.events.rule-arn and the
// others) contain '.', which the key pattern refuses, so they are reported
// here too. The parameter groups kept as raw JSON (KinesisParameters and
// the other target kinds bridgeport does not deliver to) are not checked.
func validateTargetShapes(targets []Target, v *awsapi.Violations) {
	for i := range targets {
		t := &targets[i]
		p := "targets." + strconv.Itoa(i+1) + ".member."
		requiredString(v, t.Id, p+"id", targetIDShape)
		requiredString(v, t.Arn, p+"arn", arnShape)
		optionalString(v, t.RoleArn, p+"roleArn", arnShape)
		optionalString(v, t.Input, p+"input", inputShape)
		optionalString(v, t.InputPath, p+"inputPath", inputPathShape)
		if it := t.InputTransformer; it != nil {
			checkMap(v, it.InputPathsMap, p+"inputTransformer.inputPathsMap", maxInputPaths, pathKeyShape, inputPathShape)
			if it.InputTemplate == nil {
				v.Add(nil, p+"inputTransformer.inputTemplate", awsapi.MustNotBeNull)
			} else {
				optionalString(v, it.InputTemplate, p+"inputTransformer.inputTemplate", inputTemplateShape)
			}
		}
		if sp := t.SqsParameters; sp != nil {
			optionalString(v, sp.MessageGroupId, p+"sqsParameters.messageGroupId", messageGroupShape)
		}
		if hp := t.HttpParameters; hp != nil {
			for j, pv := range hp.PathParameterValues {
				checkString(v, pv, p+"httpParameters.pathParameterValues."+strconv.Itoa(j+1)+".member", pathParameterShape)
			}
			checkMap(v, hp.HeaderParameters, p+"httpParameters.headerParameters", 0, headerKeyShape, headerValueShape)
			checkMap(v, hp.QueryStringParameters, p+"httpParameters.queryStringParameters", 0, queryKeyShape, queryValueShape)
		}
		if dl := t.DeadLetterConfig; dl != nil {
			optionalString(v, dl.Arn, p+"deadLetterConfig.arn", arnShape)
		}
		if rp := t.RetryPolicy; rp != nil {
			checkRange(v, rp.MaximumRetryAttempts, p+"retryPolicy.maximumRetryAttempts", minRetries, maxRetries)
			checkRange(v, rp.MaximumEventAgeInSeconds, p+"retryPolicy.maximumEventAgeInSeconds", minEventAge, maxEventAge)
		}
	}
}

func requiredString(v *awsapi.Violations, s, path string, sh stringShape) {
	if s == "" {
		v.Add(nil, path, awsapi.MustNotBeNull)
		return
	}
	checkString(v, s, path, sh)
}

func optionalString(v *awsapi.Violations, s *string, path string, sh stringShape) {
	if s != nil {
		checkString(v, *s, path, sh)
	}
}

func checkString(v *awsapi.Violations, s, path string, sh stringShape) {
	for _, c := range sh.violations(s) {
		v.Add(s, path, c)
	}
}

func checkRange(v *awsapi.Violations, n *int, path string, lo, hi int) {
	switch {
	case n == nil:
	case *n < lo:
		v.Add(*n, path, awsapi.MinValue(lo))
	case *n > hi:
		v.Add(*n, path, awsapi.MaxValue(hi))
	}
}

// checkMap records a map's violations: its size (maxEntries 0 means no
// limit), then its keys, then its values, each aspect once.
func checkMap(v *awsapi.Violations, m map[string]string, path string, maxEntries int, key, value stringShape) {
	if m == nil {
		return
	}
	tooMany := maxEntries > 0 && len(m) > maxEntries
	badKey, badValue := false, false
	for k, val := range m {
		badKey = badKey || len(key.violations(k)) > 0
		badValue = badValue || len(value.violations(val)) > 0
	}
	if !tooMany && !badKey && !badValue {
		return
	}
	shown := javaMapString(m)
	if tooMany {
		v.Add(shown, path, awsapi.MaxLen(maxEntries))
	}
	if badKey {
		v.Add(shown, path, "Map keys must satisfy constraint: "+key.describe())
	}
	if badValue {
		v.Add(shown, path, "Map value must satisfy constraint: "+value.describe())
	}
}

// validPathParameter implements the PathParameter pattern ^(?!\s*$).+ with
// Java's meanings: '.' matches anything but a line terminator, and \s is
// [ \t\n\x0B\f\r].
func validPathParameter(s string) bool {
	if s == "" || strings.ContainsAny(s, "\n\r\u0085\u2028\u2029") {
		return false
	}
	return strings.Trim(s, " \t\v\f") != ""
}

// javaLen is the length of s in UTF-16 code units, Java's String.length,
// which AWS's length constraints count.
func javaLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// javaMapString renders m as AWS's messages show a map: Java's
// HashMap.toString, {k1=v1, k2=v2}, in HashMap iteration order, that is by
// the bucket of each key's String.hashCode in a table grown from the default
// 16 buckets. Keys sharing a bucket, which Java keeps in arrival order, are
// sorted. A recorded AWS message shows this order (see the tests).
func javaMapString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	buckets := 16
	for len(keys) > buckets*3/4 {
		buckets *= 2
	}
	bucket := func(k string) uint32 {
		h := javaHash(k)
		return (h ^ h>>16) & uint32(buckets-1)
	}
	sort.Slice(keys, func(i, j int) bool {
		if bi, bj := bucket(keys[i]), bucket(keys[j]); bi != bj {
			return bi < bj
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// javaHash is Java's String.hashCode: s*31 over the UTF-16 code units.
func javaHash(s string) uint32 {
	var h uint32
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + uint32(r1)
			r = r2
		}
		h = 31*h + uint32(r)
	}
	return h
}

// predefinedVariables are the input transformer's variables that need no
// InputPathsMap entry.
var predefinedVariables = map[string]bool{
	"aws.events.rule-arn":             true,
	"aws.events.rule-name":            true,
	"aws.events.event.ingestion-time": true,
	"aws.events.event":                true,
	"aws.events.event.json":           true,
}

// placeholderRE finds the placeholders of an InputTemplate as
// internal/transform fills them: <name>, name made of [A-Za-z0-9_.-].
// Other text between angle brackets is left as it is, so it is not checked.
var placeholderRE = regexp.MustCompile(`<([A-Za-z0-9_.\-]+)>`)

// arnRE matches an ARN: arn:partition:service:region:account:resource,
// region and account possibly empty (as in S3's), the account of 12
// digits when given.
var arnRE = regexp.MustCompile(`^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12})?:.+$`)

// sqsQueueArnRE matches an SQS queue ARN: partition, region, 12-digit
// account, and a queue name of 1 to 80 characters (a FIFO queue's name
// ending in .fifo).
var sqsQueueArnRE = regexp.MustCompile(`^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$`)

// checkTarget applies the rules PutTargets checks once the shapes pass and
// returns the ValidationException for the first rule t breaks, or nil.
// In order:
//   - Arn is an ARN;
//   - at most one of Input, InputPath and InputTransformer;
//   - Input is JSON text;
//   - InputPath and every InputPathsMap value is a JSONPath (ValidJSONPath);
//   - every <placeholder> of InputTemplate is an InputPathsMap key or a
//     predefined variable;
//   - DeadLetterConfig.Arn is an SQS queue ARN;
//   - a FIFO queue target has SqsParameters with a MessageGroupId.
//
// The ranges of RetryPolicy and the limits of HttpParameters and of the
// InputPathsMap keys are the model's, checked by validateTargetShapes.
// SqsParameters on a target that is not a queue are accepted, as AWS
// accepts them.
func checkTarget(t *Target) *awsapi.Error {
	if !arnRE.MatchString(t.Arn) {
		// moto's and LocalStack's wording; AWS's answers quoted in user
		// reports end the same way ("Provided Arn is not in correct
		// format"): the whole text is UNVERIFIED.
		return awsapi.Errorf(awsapi.CodeValidation, "Parameter %s is not valid. Reason: Provided Arn is not in correct format.", t.Arn)
	}
	set := 0
	for _, given := range []bool{t.Input != nil, t.InputPath != nil, t.InputTransformer != nil} {
		if given {
			set++
		}
	}
	if set > 1 {
		return awsapi.Errorf(awsapi.CodeValidation, "Only one of Input, InputPath, or InputTransformer must be provided for target %s.", t.Id)
	}
	if t.Input != nil && !json.Valid([]byte(*t.Input)) {
		return awsapi.Errorf(awsapi.CodeValidation, "Input for target %s is not a valid JSON text.", t.Id)
	}
	// The JSONPath wording was reported from a live PutTargets call by a
	// third party (a CloudFormation preflight rule), for InputPath and
	// InputPathsMap values alike; AWS does not document it. UNVERIFIED
	// wording until seen in a recorded AWS response.
	if t.InputPath != nil && !ValidJSONPath(*t.InputPath) {
		return invalidInputPath(t.Id)
	}
	if it := t.InputTransformer; it != nil {
		keys := make([]string, 0, len(it.InputPathsMap))
		for k := range it.InputPathsMap {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !ValidJSONPath(it.InputPathsMap[k]) {
				return invalidInputPath(t.Id)
			}
		}
		if it.InputTemplate != nil {
			for _, m := range placeholderRE.FindAllStringSubmatch(*it.InputTemplate, -1) {
				name := m[1]
				if _, ok := it.InputPathsMap[name]; !ok && !predefinedVariables[name] {
					return awsapi.Errorf(awsapi.CodeValidation, "InputTemplate for target %s contains invalid placeholder %s.", t.Id, name)
				}
			}
		}
	}
	if dl := t.DeadLetterConfig; dl != nil && dl.Arn != nil && !sqsQueueArnRE.MatchString(*dl.Arn) {
		// UNVERIFIED wording.
		return awsapi.Errorf(awsapi.CodeValidation, "Parameter DeadLetterConfig.Arn for target %s is not a valid SQS queue ARN: %s.", t.Id, *dl.Arn)
	}
	if t.RoleArn == nil && strings.Contains(t.Arn, ":api-destination/") && strings.HasPrefix(t.Arn, "arn:aws") {
		// Recorded AWS message (a Terraform user's PutTargets error).
		return awsapi.Errorf(awsapi.CodeValidation, "RoleArn is required for target %s.", t.Arn)
	}
	if isFIFOQueueArn(t.Arn) && (t.SqsParameters == nil || t.SqsParameters.MessageGroupId == nil) {
		// Recorded for a FIFO queue target without SqsParameters; used as
		// well when SqsParameters has no MessageGroupId (UNVERIFIED).
		return awsapi.Errorf(awsapi.CodeValidation, "Parameter(s) SqsParameters must be specified for target: %s.", t.Id)
	}
	return nil
}

func invalidInputPath(id string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeValidation, "InputPath for target %s is invalid.", id)
}

// isFIFOQueueArn reports whether arn names an SQS FIFO queue.
func isFIFOQueueArn(arn string) bool {
	parts := strings.SplitN(arn, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "sqs" && strings.HasSuffix(parts[5], ".fifo")
}

// ValidJSONPath reports whether p is a JSONPath EventBridge accepts in
// InputPath, InputPathsMap values and HttpParameters values: $ followed by
// dot-notation members ($.detail, $.detail-type), array indices
// ($.detail.items[0]) and wildcards ($.detail.*, $.detail.items[*]).
//
// It accepts what internal/transform evaluates, less quoted members in
// brackets ($.detail['odd key']): AWS asks for "JSON dot notation, not
// bracket notation" (API reference, InputTransformer) and was reported to
// refuse them. Recursive descent ($..id), filters and slices are refused
// because transform cannot evaluate them.
func ValidJSONPath(p string) bool {
	if !transform.ValidPath(p) {
		return false
	}
	// transform's grammar has no '[' inside a dot-notation member, so a
	// quote after any '[' is a quoted bracket member.
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '[' && (p[i+1] == '\'' || p[i+1] == '"') {
			return false
		}
	}
	return true
}
