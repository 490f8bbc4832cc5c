// Package jsonscan holds the byte scanning that bridgeport's JSON readers
// share: the event flattener of internal/pattern and PutEvents' decoder. It
// is pure (the standard library only) and safe for concurrent use.
package jsonscan

import "math/bits"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// Plain returns the index of the first byte of s at or after i that ends a
// plain run inside a JSON string: a quote, a backslash or a control
// character (below 0x20). It returns len(s) when there is none. It reads
// eight bytes at a time, so a long string costs about a tenth of a byte
// loop.
func Plain[T string | []byte](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		v := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if m := special(v); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(s)
}

// special sets the high bit of the lowest byte of v (in memory order) that
// is a quote, a backslash or below 0x20, and maybe of bytes after it, where
// a borrow carried over; it is zero when v has none. Each term is the
// classic test for a zero byte, (x - 0x01…) &^ x & 0x80…, applied to v
// xor the byte sought, and for bytes below 0x20 to v itself with 0x20…
// subtracted: a byte at or above 0x80 never sets its term's high bit, and a
// borrow only reaches past a byte that was itself found.
func special(v uint64) uint64 {
	q := v ^ (ones * '"')
	b := v ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (v-ones*0x20)&^v) & highs
}
