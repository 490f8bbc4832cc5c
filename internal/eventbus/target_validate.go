package eventbus

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/transform"
)

// Patterns of the EventBridge API model (events 2015-10-07).
const (
	targetIDPattern      = `[\.\-_A-Za-z0-9]+`
	pathKeyPattern       = `[A-Za-z0-9\_\-]+`
	headerKeyPattern     = `^[!#$%&'*+-.^_` + "`" + `|~0-9a-zA-Z]+$`
	headerValuePattern   = `^[ \t]*[\x20-\x7E]+([ \t]+[\x20-\x7E]+)*[ \t]*$`
	queryKeyPattern      = `[^\x00-\x1F\x7F]+`
	queryValuePattern    = `[^\x00-\x09\x0B\x0C\x0E-\x1F\x7F]+`
	pathParameterPattern = `^(?!\s*$).+`
)

var (
	targetIDRE   = regexp.MustCompile(`^` + targetIDPattern + `$`)
	pathKeyRE    = regexp.MustCompile(`^` + pathKeyPattern + `$`)
	headerKeyRE  = regexp.MustCompile(headerKeyPattern)
	headerValRE  = regexp.MustCompile(headerValuePattern)
	queryKeyRE   = regexp.MustCompile(`^` + queryKeyPattern + `$`)
	queryValRE   = regexp.MustCompile(`^` + queryValuePattern + `$`)
	sqsArnRE     = regexp.MustCompile(`^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$`)
	placeholder  = regexp.MustCompile(`<([^<>]*)>`)
	predefinedIT = map[string]bool{
		"aws.events.rule-arn":             true,
		"aws.events.rule-name":            true,
		"aws.events.event.ingestion-time": true,
		"aws.events.event":                true,
		"aws.events.event.json":           true,
	}
)

// validateTargetShapes records the model-constraint violations of a
// PutTargets Targets list with AWS's member paths ("targets.1.member.id").
func validateTargetShapes(targets []Target, v *awsapi.Violations) {
	for i := range targets {
		t := &targets[i]
		p := "targets." + strconv.Itoa(i+1) + ".member."
		switch {
		case t.Id == "":
			v.Add(nil, p+"id", awsapi.MustNotBeNull)
		case len(t.Id) > 64:
			v.Add(t.Id, p+"id", awsapi.MaxLen(64))
		case !targetIDRE.MatchString(t.Id):
			v.Add(t.Id, p+"id", awsapi.MatchPattern(targetIDPattern))
		}
		switch {
		case t.Arn == "":
			v.Add(nil, p+"arn", awsapi.MustNotBeNull)
		case len(t.Arn) > 1600:
			v.Add(t.Arn, p+"arn", awsapi.MaxLen(1600))
		}
		if t.RoleArn != nil && (len(*t.RoleArn) < 1 || len(*t.RoleArn) > 1600) {
			v.Add(*t.RoleArn, p+"roleArn", lenConstraint(len(*t.RoleArn), 1, 1600))
		}
		if t.Input != nil && len(*t.Input) > 8192 {
			v.Add(*t.Input, p+"input", awsapi.MaxLen(8192))
		}
		if t.InputPath != nil && len(*t.InputPath) > 256 {
			v.Add(*t.InputPath, p+"inputPath", awsapi.MaxLen(256))
		}
		if it := t.InputTransformer; it != nil {
			if len(it.InputPathsMap) > 100 {
				v.Add(len(it.InputPathsMap), p+"inputTransformer.inputPathsMap", "Member must have length less than or equal to 100")
			}
			for _, k := range sortedKeys(it.InputPathsMap) {
				val := it.InputPathsMap[k]
				if len(val) > 256 {
					v.Add(val, p+"inputTransformer.inputPathsMap", "Map value must satisfy constraint: [Member must have length less than or equal to 256]")
				}
			}
			switch {
			case it.InputTemplate == nil:
				v.Add(nil, p+"inputTransformer.inputTemplate", awsapi.MustNotBeNull)
			case len(*it.InputTemplate) < 1 || len(*it.InputTemplate) > 8192:
				v.Add(*it.InputTemplate, p+"inputTransformer.inputTemplate", lenConstraint(len(*it.InputTemplate), 1, 8192))
			}
		}
		if rp := t.RetryPolicy; rp != nil {
			if n := rp.MaximumRetryAttempts; n != nil && (*n < 0 || *n > 185) {
				v.Add(*n, p+"retryPolicy.maximumRetryAttempts", rangeConstraint(*n, 0, 185))
			}
			if n := rp.MaximumEventAgeInSeconds; n != nil && (*n < 60 || *n > 86400) {
				v.Add(*n, p+"retryPolicy.maximumEventAgeInSeconds", rangeConstraint(*n, 60, 86400))
			}
		}
		if dl := t.DeadLetterConfig; dl != nil && dl.Arn != nil && (len(*dl.Arn) < 1 || len(*dl.Arn) > 1600) {
			v.Add(*dl.Arn, p+"deadLetterConfig.arn", lenConstraint(len(*dl.Arn), 1, 1600))
		}
		if hp := t.HttpParameters; hp != nil {
			for j, pv := range hp.PathParameterValues {
				if strings.TrimSpace(pv) == "" {
					v.Add(pv, p+"httpParameters.pathParameterValues."+strconv.Itoa(j+1)+".member", awsapi.MatchPattern(pathParameterPattern))
				}
			}
			for _, k := range sortedKeys(hp.HeaderParameters) {
				val := hp.HeaderParameters[k]
				switch {
				case len(k) > 512 || !headerKeyRE.MatchString(k):
					v.Add(k, p+"httpParameters.headerParameters", "Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: "+headerKeyPattern+"]")
				case len(val) > 512 || (val != "" && !headerValRE.MatchString(val)):
					v.Add(val, p+"httpParameters.headerParameters", "Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: "+headerValuePattern+"]")
				}
			}
			for _, k := range sortedKeys(hp.QueryStringParameters) {
				val := hp.QueryStringParameters[k]
				switch {
				case len(k) > 512 || !queryKeyRE.MatchString(k):
					v.Add(k, p+"httpParameters.queryStringParameters", "Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: "+queryKeyPattern+"]")
				case len(val) > 512 || (val != "" && !queryValRE.MatchString(val)):
					v.Add(val, p+"httpParameters.queryStringParameters", "Map value must satisfy constraint: [Member must have length less than or equal to 512, Member must satisfy regular expression pattern: "+queryValuePattern+"]")
				}
			}
		}
	}
}

func lenConstraint(n, lo, hi int) string {
	if n < lo {
		return awsapi.MinLen(lo)
	}
	return awsapi.MaxLen(hi)
}

func rangeConstraint(n, lo, hi int) string {
	if n < lo {
		return awsapi.MinValue(lo)
	}
	return awsapi.MaxValue(hi)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkTarget applies the rules PutTargets checks once the shapes pass,
// with AWS's wording where it is recorded.
func checkTarget(t *Target) *awsapi.Error {
	n := 0
	for _, set := range []bool{t.Input != nil, t.InputPath != nil, t.InputTransformer != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return awsapi.Errorf(awsapi.CodeValidation, "Only one of Input, InputPath, or InputTransformer must be provided for target %s.", t.Id)
	}
	if t.Input != nil && !json.Valid([]byte(*t.Input)) {
		// UNVERIFIED wording.
		return awsapi.Errorf(awsapi.CodeValidation, "Input for target %s is not valid JSON text.", t.Id)
	}
	if t.InputPath != nil && !transform.ValidPath(*t.InputPath) {
		// UNVERIFIED wording.
		return awsapi.Errorf(awsapi.CodeValidation, "InputPath for target %s is not a valid JsonPath.", t.Id)
	}
	if it := t.InputTransformer; it != nil {
		for _, k := range sortedKeys(it.InputPathsMap) {
			if !pathKeyRE.MatchString(k) || len(k) > 256 {
				// UNVERIFIED wording.
				return awsapi.Errorf(awsapi.CodeValidation, "InputPathsMap key %s for target %s must satisfy regular expression pattern: %s.", k, t.Id, pathKeyPattern)
			}
			if predefinedIT[k] {
				// UNVERIFIED wording.
				return awsapi.Errorf(awsapi.CodeValidation, "InputPathsMap for target %s uses the reserved name %s.", t.Id, k)
			}
			if !transform.ValidPath(it.InputPathsMap[k]) {
				// UNVERIFIED wording.
				return awsapi.Errorf(awsapi.CodeValidation, "InputPathsMap value for key %s of target %s is not a valid JsonPath.", k, t.Id)
			}
		}
		for _, m := range placeholder.FindAllStringSubmatch(*it.InputTemplate, -1) {
			name := m[1]
			if _, ok := it.InputPathsMap[name]; !ok && !predefinedIT[name] {
				return awsapi.Errorf(awsapi.CodeValidation, "InputTemplate for target %s contains invalid placeholder %s.", t.Id, name)
			}
		}
	}
	if dl := t.DeadLetterConfig; dl != nil && dl.Arn != nil && !sqsArnRE.MatchString(*dl.Arn) {
		// UNVERIFIED wording.
		return awsapi.Errorf(awsapi.CodeValidation, "The dead-letter queue ARN %s of target %s is not a valid SQS queue ARN.", *dl.Arn, t.Id)
	}
	return nil
}
