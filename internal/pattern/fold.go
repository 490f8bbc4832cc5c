package pattern

import (
	"unicode"
	"unicode/utf8"
)

// appendFold appends the case-folded form of s to dst. Two strings are equal
// ignoring case when their folded forms are equal. Each character folds to
// the lower case of its upper case, the per-character rule of Java's
// String.equalsIgnoreCase, which EventBridge's matcher follows; so "Σ", "σ"
// and "ς" are equal, as are "K" and the Kelvin sign. Folding works on code
// points and never changes their number, so the folded form of a prefix is a
// prefix of the folded form. Invalid UTF-8 bytes are kept as they are.
func appendFold(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, c)
			i++
			continue
		}
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

func foldRune(r rune) rune {
	return unicode.ToLower(unicode.ToUpper(r))
}

// fold returns the case-folded form of s.
func fold(s string) string {
	return string(appendFold(nil, []byte(s)))
}
