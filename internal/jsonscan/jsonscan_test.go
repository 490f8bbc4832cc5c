package jsonscan

import (
	"bytes"
	"testing"
)

// plainBytes is Plain one byte at a time: the reference.
func plainBytes(s []byte, i int) int {
	for ; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(s)
}

func TestPlain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		i    int
		want int
	}{
		{``, 0, 0},
		{`abc`, 0, 3},
		{`abcdefghijklmnop`, 0, 16},
		{`abcdefgh"`, 0, 8},
		{`abcdefg"`, 0, 7},
		{`"abcdefgh`, 0, 0},
		{`"abcdefgh"`, 1, 9},
		{"abc\x1fdefghij", 0, 3},
		{"abc\x20defghij\\", 0, 11},
		{"\x7f\x80\xff\xfe\xe2\x82\xacxyz\"", 0, 10},
		// A borrow out of a special byte must not hide it or invent one
		// before it.
		{"\x00\x21\x23\x5d\x5b\x1f", 0, 0},
		{"\x21\x21\x21\x21\x21\x21\x21\x00", 0, 7},
		{"\x20\x20\x20\x20\x20\x20\x20\x20\x1f", 0, 8},
		{"\x23\x23\x23\x23\x23\x23\x23\x22", 0, 7},
		{"\x5d\x5d\x5d\x5d\x5d\x5d\x5d\x5c", 0, 7},
		{"aaaaaaaaaaaaaaaaaaaa\\", 5, 20},
	} {
		if got := Plain([]byte(tc.s), tc.i); got != tc.want {
			t.Errorf("Plain(%q, %d) = %d, want %d", tc.s, tc.i, got, tc.want)
		}
	}
}

// TestPlainEveryByte puts each byte value at each position of a word, after
// each byte value, and compares with the byte loop.
func TestPlainEveryByte(t *testing.T) {
	t.Parallel()
	s := make([]byte, 11)
	for c := range 256 {
		for before := range 256 {
			for pos := 1; pos < len(s); pos++ {
				for k := range s {
					s[k] = 'a'
				}
				s[pos-1] = byte(before)
				s[pos] = byte(c)
				for i := range 3 {
					if got, want := Plain(s, i), plainBytes(s, i); got != want {
						t.Fatalf("Plain(%q, %d) = %d, want %d", s, i, got, want)
					}
				}
			}
		}
	}
}

func FuzzPlain(f *testing.F) {
	f.Add([]byte(`{"a":"bcdefghijkl\"m"}`), 2)
	f.Add([]byte("\x00\x21\x23\x5d\x5b\x1f\x80\xff"), 0)
	f.Fuzz(func(t *testing.T, s []byte, i int) {
		if i < 0 || i > len(s) {
			return
		}
		if got, want := Plain(s, i), plainBytes(s, i); got != want {
			t.Fatalf("Plain(%q, %d) = %d, want %d", s, i, got, want)
		}
	})
}

func BenchmarkPlain(b *testing.B) {
	s := append(bytes.Repeat([]byte("x"), 1000), '"')
	b.Run("words", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			if Plain(s, 0) != len(s)-1 {
				b.Fatal("wrong end")
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			if plainBytes(s, 0) != len(s)-1 {
				b.Fatal("wrong end")
			}
		}
	})
}
