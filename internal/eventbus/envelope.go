package eventbus

import (
	"errors"
	"time"
)

// The event envelope is built by PutEvents (appendEnvelope), so its members
// are known, but events stored by other versions, or forwarded, are read
// through these helpers, which accept any JSON object and look only at its
// top level.

// topMember finds the member key at the top level of the JSON object obj.
// It returns where the member begins (its key's opening quote) and where
// its value begins and ends. The object is assumed valid JSON, as stored
// events are; malformed input gives ok false, never a panic.
func topMember(obj []byte, key string) (memberStart, valStart, valEnd int, ok bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return 0, 0, 0, false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return 0, 0, 0, false
		}
		start := i
		end := skipString(obj, i)
		if end < 0 {
			return 0, 0, 0, false
		}
		name := obj[start+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return 0, 0, 0, false
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve < 0 {
			return 0, 0, 0, false
		}
		if string(name) == key {
			return start, vs, ve, true
		}
		i = skipSpace(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return 0, 0, 0, false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] (a
// quote), or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value that starts at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				e := skipString(b, i)
				if e < 0 {
					return -1
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if j == i {
				return -1
			}
			return j
		}
	}
	return -1
}

var errNoTime = errors.New("the event has no time")

// eventTime returns the event's time member, the time replays select by.
func eventTime(event []byte) (time.Time, error) {
	_, vs, ve, ok := topMember(event, "time")
	if !ok || ve-vs < 2 || event[vs] != '"' {
		return time.Time{}, errNoTime
	}
	return time.Parse(time.RFC3339, string(event[vs+1:ve-1]))
}

// withReplayName returns the event with a top-level "replay-name" member,
// where EventBridge puts it: after region, before resources.
func withReplayName(event []byte, replay string) []byte {
	member := appendJSONString([]byte(`"replay-name":`), replay)
	out := make([]byte, 0, len(event)+len(member)+1)
	if ms, _, _, ok := topMember(event, "resources"); ok {
		out = append(out, event[:ms]...)
		out = append(out, member...)
		out = append(out, ',')
		return append(out, event[ms:]...)
	}
	// No resources member: last, before the closing brace.
	end := len(event) - 1
	for end > 0 && event[end] != '}' {
		end--
	}
	body := skipSpace(event, skipSpace(event, 0)+1)
	out = append(out, event[:end]...)
	if body < end {
		out = append(out, ',')
	}
	out = append(out, member...)
	return append(out, event[end:]...)
}
