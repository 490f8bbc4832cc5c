package awsapi

import (
	"encoding/base64"
	"regexp"
	"sort"
	"strings"
)

// DefaultPage is how many items a List operation returns without a Limit.
const DefaultPage = 100

// ValidateNamePrefix checks a List operation's NamePrefix: 1 to max
// characters of the names' pattern re.
func ValidateNamePrefix(v *Violations, prefix *string, max int, re string) {
	if prefix == nil {
		return
	}
	switch {
	case len(*prefix) < 1:
		v.Add(*prefix, "namePrefix", MinLen(1))
	case len(*prefix) > max:
		v.Add(*prefix, "namePrefix", MaxLen(max))
	case !regexp.MustCompile(`^(` + re + `)$`).MatchString(*prefix):
		v.Add(*prefix, "namePrefix", MatchPattern(re))
	}
}

// ValidateList checks a List operation's NextToken and Limit (1 to 100).
func ValidateList(v *Violations, token *string, limit *int) {
	if token != nil {
		switch {
		case len(*token) < 1:
			v.Add(*token, "nextToken", MinLen(1))
		case len(*token) > 2048:
			v.Add(*token, "nextToken", MaxLen(2048))
		}
	}
	if limit != nil {
		switch {
		case *limit < 1:
			v.Add(*limit, "limit", MinValue(1))
		case *limit > 100:
			v.Add(*limit, "limit", MaxValue(100))
		}
	}
}

// Paginate returns the page of sorted names after the token and the token
// for the next page, if any. A token is the last name of the previous page,
// encoded, so pages stay correct when names are added or removed between
// calls.
func Paginate(names []string, token *string, limit *int) ([]string, *string, error) {
	n := DefaultPage
	if limit != nil {
		n = *limit
	}
	start := 0
	if token != nil {
		after, err := base64.RawURLEncoding.DecodeString(*token)
		if err != nil || !strings.HasPrefix(string(after), "n:") {
			return nil, nil, Errorf(CodeValidation, "The NextToken provided is invalid.")
		}
		last := string(after[2:])
		start = sort.SearchStrings(names, last)
		if start < len(names) && names[start] == last {
			start++
		}
	}
	end := min(start+n, len(names))
	page := names[start:end]
	if end < len(names) {
		t := base64.RawURLEncoding.EncodeToString([]byte("n:" + names[end-1]))
		return page, &t, nil
	}
	return page, nil, nil
}

// LenConstraint returns the length constraint that a value of length n
// breaks, for a shape of lo to hi characters; n is assumed out of range.
func LenConstraint(n, lo, hi int) string {
	if n < lo {
		return MinLen(lo)
	}
	return MaxLen(hi)
}
