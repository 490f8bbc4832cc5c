package awsapi

import (
	"fmt"
	"strings"
)

// Violations collects constraint violations of one request, to be reported
// together as AWS does:
//
//	1 validation error detected: Value 'x' at 'name' failed to satisfy constraint: Member must ...
//
// Several violations are joined with "; " after "N validation errors
// detected: ". The zero value is ready to use.
type Violations struct {
	list []string
}

// Add records that value at path (AWS's lowerCamel member path, such as
// "targets.1.member.id") fails constraint (such as "Member must have length
// less than or equal to 64").
func (v *Violations) Add(value any, path, constraint string) {
	shown := "'" + formatValue(value) + "'"
	if value == nil {
		shown = "null" // AWS writes a missing value unquoted
	}
	v.list = append(v.list, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", shown, path, constraint))
}

// Len returns the number of violations recorded.
func (v *Violations) Len() int { return len(v.list) }

// Err returns the ValidationException for the violations, or nil if none.
func (v *Violations) Err() *Error {
	switch len(v.list) {
	case 0:
		return nil
	case 1:
		return &Error{Code: CodeValidation, Message: "1 validation error detected: " + v.list[0]}
	}
	return &Error{Code: CodeValidation, Message: fmt.Sprintf("%d validation errors detected: %s", len(v.list), strings.Join(v.list, "; "))}
}

// formatValue renders a value the way AWS's constraint messages show it.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case *string:
		if x == nil {
			return "null"
		}
		return *x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// Constraint wordings used by AWS's validation messages.
const (
	MustNotBeNull = "Member must not be null"
)

// MaxLen is AWS's wording for a maximum length.
func MaxLen(n int) string { return fmt.Sprintf("Member must have length less than or equal to %d", n) }

// MinLen is AWS's wording for a minimum length.
func MinLen(n int) string {
	return fmt.Sprintf("Member must have length greater than or equal to %d", n)
}

// MatchPattern is AWS's wording for a regular expression constraint.
func MatchPattern(re string) string { return "Member must satisfy regular expression pattern: " + re }

// InEnum is AWS's wording for an enumeration constraint.
func InEnum(values ...string) string {
	return "Member must satisfy enum value set: [" + strings.Join(values, ", ") + "]"
}

// MinValue is AWS's wording for a lower bound on a number.
func MinValue(n int) string {
	return fmt.Sprintf("Member must have value greater than or equal to %d", n)
}

// MaxValue is AWS's wording for an upper bound on a number.
func MaxValue(n int) string { return fmt.Sprintf("Member must have value less than or equal to %d", n) }
