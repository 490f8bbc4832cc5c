package jsonscan

import "strings"

// Compact returns s without the JSON whitespace (space, tab, newline,
// carriage return) between its tokens, as encoding/json's Compact would,
// in one pass that skips strings eight bytes at a time. It returns s itself,
// without allocating, when there is none to drop.
//
// It does not validate s: its caller checks the result. But it returns s
// unchanged and false when s holds more than one value, which it sees in
// three ways:
//   - whitespace between two tokens neither of which is punctuation (as in
//     `1 2` or `"a" "b"`): removing it could join them into one;
//   - anything but whitespace after the bracket that closes the first value
//     (as in `{"a":1},"b":2`, which put inside an object would add members
//     to it); this covers texts that begin with a bracket, as a detail
//     does;
//   - a closing bracket that closes nothing.
//
// Whitespace next to punctuation, or at either end, can be dropped without
// changing what the text is, so Compact never turns invalid JSON into
// valid JSON.
func Compact(s string) (string, bool) {
	var out strings.Builder // empty until there is whitespace to drop
	kept := 0               // s[kept:i] is yet to be copied to out
	depth := 0              // brackets open
	for i := 0; i < len(s); {
		switch s[i] {
		case '"':
			i = stringEnd(s, i+1)
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
			if depth < 0 || depth == 0 && !onlySpace(s[i:]) {
				return s, false
			}
		case ' ', '\t', '\n', '\r':
			j := i + 1
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			if i > 0 && j < len(s) && !opens(s[i-1]) && !closes(s[j]) {
				return s, false
			}
			if out.Cap() == 0 {
				out.Grow(len(s))
			}
			out.WriteString(s[kept:i])
			kept, i = j, j
		default:
			i++
		}
	}
	if out.Cap() == 0 {
		return s, true
	}
	out.WriteString(s[kept:])
	return out.String(), true
}

// stringEnd returns the index just past the string whose contents start at
// i, or len(s) if it is not closed. Control characters (invalid) are taken
// as part of the string.
func stringEnd(s string, i int) int {
	for {
		i = Plain(s, i)
		switch {
		case i >= len(s):
			return len(s)
		case s[i] == '"':
			return i + 1
		case s[i] == '\\':
			i += 2
		default:
			i++
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func onlySpace(s string) bool {
	for i := range len(s) {
		if !isSpace(s[i]) {
			return false
		}
	}
	return true
}

// opens reports whether whitespace after c may be dropped whatever follows.
func opens(c byte) bool { return c == '{' || c == '[' || c == ',' || c == ':' }

// closes reports whether whitespace before c may be dropped whatever came
// before.
func closes(c byte) bool { return c == '}' || c == ']' || c == ',' || c == ':' }
