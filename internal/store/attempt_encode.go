package store

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The attempt log writes a record for every attempt, so its encoding is on
// the delivery path: appendAttempt writes what json.Marshal would decode
// to the same Attempt (TestAppendAttempt, FuzzAppendAttempt), without
// reflection or allocation, into the pending message; and the subject is
// built without formatting.

// appendAttempt appends a's JSON encoding to dst. ok is false, and dst
// unchanged, when a cannot be encoded: a time whose year has not four
// digits or whose zone is 24 hours or more from UTC, as json.Marshal
// refuses.
func appendAttempt(dst []byte, a *Attempt) (_ []byte, ok bool) {
	if !encodableTime(a.Time) || (a.RetryAt != nil && !encodableTime(*a.RetryAt)) {
		return dst, false
	}
	dst = append(dst, `{"time":`...)
	dst = appendJSONTime(dst, a.Time)
	dst = appendField(dst, "eventId", a.EventID)
	dst = appendField(dst, "bus", a.Bus)
	dst = appendField(dst, "ruleArn", a.RuleArn)
	dst = appendField(dst, "targetId", a.TargetID)
	dst = appendField(dst, "targetArn", a.TargetArn)
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(a.Attempt), 10)
	dst = append(dst, `,"durationNs":`...)
	dst = strconv.AppendInt(dst, int64(a.Duration), 10)
	if a.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(a.Status), 10)
	}
	if a.Code != "" {
		dst = appendField(dst, "code", a.Code)
	}
	if a.Message != "" {
		dst = appendField(dst, "message", a.Message)
	}
	dst = appendField(dst, "outcome", a.Outcome)
	if a.RetryAt != nil {
		dst = append(dst, `,"retryAt":`...)
		dst = appendJSONTime(dst, *a.RetryAt)
	}
	if a.DeadLetterQueue != "" {
		dst = appendField(dst, "deadLetterQueue", a.DeadLetterQueue)
	}
	return append(dst, '}'), true
}

func encodableTime(t time.Time) bool {
	_, offset := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && offset > -24*3600 && offset < 24*3600
}

func appendJSONTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendField appends `,"name":` and s as a JSON string.
func appendField(dst []byte, name, s string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, s)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, and each byte of invalid UTF-8 as U+FFFD, as
// json.Marshal writes them.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendAttemptSubject appends the subject of a's record:
// attemptsSubject, TargetKey(a.RuleArn, a.TargetID) (routerKey for a
// record with no rule) and eventBucket(a.EventID), joined by dots.
func appendAttemptSubject(dst []byte, a *Attempt) []byte {
	dst = append(dst, attemptsSubject...)
	dst = append(dst, '.')
	if a.RuleArn == "" {
		dst = append(dst, routerKey...)
	} else {
		dst = appendTargetKey(dst, a.RuleArn, a.TargetID)
	}
	return append(dst, '.', 'x', hexDigits[eventHash(a.EventID)&0xf])
}

const hexDigits = "0123456789abcdef"
