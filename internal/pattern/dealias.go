package pattern

// An element of an array (or the top of the event) can hold the values of
// one path in more than one way: a key repeated in an object, or a dotted
// key next to the nested path it spells ({"a": [...], "a": [...]},
// {"a": {"b": [1]}, "a.b": [2]}). With arrays in both ways, array-
// consistent matching would have to choose, for each condition, which way
// its value comes from: a choice among exponentially many that no ordinary
// event needs. So, as JSON parsers do for a repeated key, the last way
// counts: within each element, a path's values all come through the same
// way, the way of its last value in the document; values of the path that
// arrive through another way are ignored. Repeated keys with plain values
// ({"a": 1, "a": 2}) are one way, and both values count.
//
// The way of a value within an element (or the top) is the array directly
// below that element that holds the value, or none when the value sits in
// the element itself.

// dealias removes the values of path that arrive in an element through a
// way other than the last one. Leaves of a path are listed newest first.
func (f *flatEvent) dealias(path int32) {
	if f.winners == nil {
		f.winners = make(map[int64]int32)
	}
	clear(f.winners)
	const top = int64(-1)
	prev := int32(-1)
	for li := f.head[path]; li >= 0; li = f.leaves[li].next {
		tr := f.trail(&f.leaves[li])
		keep := true
		for d := 0; d <= len(tr); d++ {
			region := top
			if d > 0 {
				region = int64(tr[d-1].array)<<32 | int64(uint32(tr[d-1].index))
			}
			way := int32(-1)
			if d < len(tr) {
				way = tr[d].array
			}
			if w, ok := f.winners[region]; ok {
				if w != way {
					keep = false
					break
				}
				continue
			}
			f.winners[region] = way
		}
		if !keep {
			// Unlink: the newest leaf always stays, so prev is set.
			f.leaves[prev].next = f.leaves[li].next
			continue
		}
		prev = li
	}
}

// twoWays reports whether two values of a path, with these arrays and
// indexes, next to each other in the document, reach the element that
// holds both through different ways. An element that values of a path
// reach through two ways always has such a pair, since the values within
// one element are consecutive in the document; so checking each value
// against the one before finds every path that needs dealias.
func twoWays(a, b []arrayPos) bool {
	k := 0
	for k < len(a) && k < len(b) && a[k] == b[k] {
		k++
	}
	switch {
	case k == len(a) && k == len(b):
		return false // both directly in the same element
	case k == len(a) || k == len(b):
		return true // one directly in the element, one in an array below it
	default:
		return a[k].array != b[k].array // in two arrays below the element, or one
	}
}
