package eventbus

import (
	"encoding/base64"
	"regexp"
	"sort"
	"strings"

	"bridgeport/internal/awsapi"
)

// defaultPage is how many items a List operation returns without a Limit.
const defaultPage = 100

func validateNamePrefix(v *awsapi.Violations, prefix *string, max int, re string) {
	if prefix == nil {
		return
	}
	switch {
	case len(*prefix) < 1:
		v.Add(*prefix, "namePrefix", awsapi.MinLen(1))
	case len(*prefix) > max:
		v.Add(*prefix, "namePrefix", awsapi.MaxLen(max))
	case !regexp.MustCompile(`^(` + re + `)$`).MatchString(*prefix):
		v.Add(*prefix, "namePrefix", awsapi.MatchPattern(re))
	}
}

func validateList(v *awsapi.Violations, token *string, limit *int) {
	if token != nil {
		switch {
		case len(*token) < 1:
			v.Add(*token, "nextToken", awsapi.MinLen(1))
		case len(*token) > 2048:
			v.Add(*token, "nextToken", awsapi.MaxLen(2048))
		}
	}
	if limit != nil {
		switch {
		case *limit < 1:
			v.Add(*limit, "limit", awsapi.MinValue(1))
		case *limit > 100:
			v.Add(*limit, "limit", awsapi.MaxValue(100))
		}
	}
}

// paginate returns the page of sorted names after the token and the token
// for the next page, if any. A token is the last name of the previous page,
// encoded, so pages stay correct when names are added or removed between
// calls.
func paginate(names []string, token *string, limit *int) ([]string, *string, error) {
	n := defaultPage
	if limit != nil {
		n = *limit
	}
	start := 0
	if token != nil {
		after, err := base64.RawURLEncoding.DecodeString(*token)
		if err != nil || !strings.HasPrefix(string(after), "n:") {
			return nil, nil, awsapi.Errorf(awsapi.CodeValidation, "The NextToken provided is invalid.")
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
