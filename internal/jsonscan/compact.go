package jsonscan

import "strings"

// Compact returns s without the JSON whitespace (space, tab, newline,
// carriage return) between its tokens, as encoding/json's Compact would,
// in one pass that skips strings eight bytes at a time. It returns s itself,
// without allocating, when there is none to drop.
//
// It does not validate s: its caller checks the result. But it never turns
// invalid JSON into valid JSON: whitespace between two tokens neither of
// which is punctuation (as in `1 2` or `"a" "b"`) is never valid, and
// removing it could join them, so Compact then returns s unchanged and
// false. Whitespace next to punctuation, or at either end, can be dropped
// without changing what the text is.
func Compact(s string) (string, bool) {
	var out strings.Builder // empty until there is whitespace to drop
	kept := 0               // s[kept:i] is yet to be copied to out
	for i := 0; i < len(s); {
		switch s[i] {
		case '"':
			i = stringEnd(s, i+1)
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

// opens reports whether whitespace after c may be dropped whatever follows.
func opens(c byte) bool { return c == '{' || c == '[' || c == ',' || c == ':' }

// closes reports whether whitespace before c may be dropped whatever came
// before.
func closes(c byte) bool { return c == '}' || c == ']' || c == ',' || c == ':' }
