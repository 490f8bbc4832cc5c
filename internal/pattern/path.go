package pattern

import (
	"bytes"
	"strings"
)

// pathNode is a node of the trie of field paths that a machine's patterns
// use, split at dots. The event flattener walks it to decide which fields to
// record and which to skip. Immutable once built.
type pathNode struct {
	keys     []string
	children []*pathNode
	slots    []int32 // set when there are many children: hash table of child indexes + 1
	leaf     int32   // the path's id when a pattern tests it, else -1

	// A perfect hash of the children's names, built by finish when one
	// exists: child index + 1 at perfect[keySig(name)*mul>>shift], so that
	// a lookup is one multiplication, one load and one comparison.
	perfect []uint8
	mul     uint32
	shift   uint8
}

// emptyNode is a trie with no paths.
var emptyNode = &pathNode{leaf: -1}

// linearChildren is the number of children up to which a linear scan beats a
// map lookup.
const linearChildren = 8

// child returns the node for an event field name below n, or nil. A name
// with dots stands for the nested path it spells, as in EventBridge.
func (n *pathNode) child(key []byte) *pathNode {
	if len(n.keys) == 0 {
		return nil
	}
	if c := n.direct(key); c != nil {
		return c
	}
	if bytes.IndexByte(key, '.') < 0 {
		return nil
	}
	node := n
	for {
		i := bytes.IndexByte(key, '.')
		if i < 0 {
			return node.direct(key)
		}
		if node = node.direct(key[:i]); node == nil {
			return nil
		}
		key = key[i+1:]
	}
}

func (n *pathNode) direct(seg []byte) *pathNode {
	if n.perfect != nil {
		i := int(n.perfect[(keySig(seg)*n.mul)>>n.shift]) - 1
		if i >= 0 && n.keys[i] == string(seg) {
			return n.children[i]
		}
		return nil
	}
	if n.slots != nil {
		mask := uint32(len(n.slots) - 1)
		for h := keyHash(seg) & mask; ; h = (h + 1) & mask {
			i := n.slots[h]
			if i == 0 {
				return nil
			}
			if n.keys[i-1] == string(seg) {
				return n.children[i-1]
			}
		}
	}
	for i, k := range n.keys {
		if k == string(seg) {
			return n.children[i]
		}
	}
	return nil
}

// keyHash is a cheap hash of a field name for the children's open-addressing
// table (FNV-1a). Field names are short; the table is at most half full.
func keyHash[T string | []byte](k T) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return h
}

// keySig sums up a field name in 32 bits: its length and three of its bytes.
// Names with the same signature cannot have a perfect hash.
func keySig[T string | []byte](k T) uint32 {
	n := len(k)
	if n == 0 {
		return 0
	}
	return uint32(n&0xff) | uint32(k[0])<<8 | uint32(k[n/2])<<16 | uint32(k[n-1])<<24
}

// maxPerfect is the most children a node hashes perfectly, and
// maxPerfectBits the log of its largest table.
const (
	maxPerfect     = 64
	maxPerfectBits = 10
)

// finish builds the perfect hashes of the trie below n, where one is found.
func (n *pathNode) finish() {
	for _, c := range n.children {
		c.finish()
	}
	n.perfect = nil
	if len(n.keys) == 0 || len(n.keys) > maxPerfect {
		return
	}
	bits := 1
	for 1<<bits < 2*len(n.keys) {
		bits++
	}
	sigs := make([]uint32, len(n.keys))
	for i, k := range n.keys {
		sigs[i] = keySig(k)
	}
	for ; bits <= maxPerfectBits; bits++ {
		table := make([]uint8, 1<<bits)
		shift := uint8(32 - bits)
		mul := uint32(0x9E3779B1) // odd multipliers from a fixed sequence
		for range 64 {
			clear(table)
			ok := true
			for i, sig := range sigs {
				h := (sig * mul) >> shift
				if table[h] != 0 {
					ok = false
					break
				}
				table[h] = uint8(i + 1)
			}
			if ok {
				n.perfect, n.mul, n.shift = table, mul, shift
				return
			}
			mul = mul*0x2C1B3C6D + 0x297A2D38 | 1
		}
	}
}

// added indexes the newest child, building or growing the hash table of
// children once there are many.
func (n *pathNode) added() {
	switch {
	case len(n.keys) <= linearChildren:
		return
	case 2*len(n.keys) > len(n.slots):
		size := 16
		for size < 4*len(n.keys) {
			size *= 2
		}
		n.slots = make([]int32, size)
		for i := range n.keys {
			n.insert(i)
		}
	default:
		n.insert(len(n.keys) - 1)
	}
}

func (n *pathNode) insert(i int) {
	mask := uint32(len(n.slots) - 1)
	h := keyHash(n.keys[i]) & mask
	for n.slots[h] != 0 {
		h = (h + 1) & mask
	}
	n.slots[h] = int32(i + 1)
}

// pathTrie builds the trie for a set of dotted paths, numbered by position.
type pathTrie struct {
	root *pathNode
	ids  map[string]int32
}

func newPathTrie() *pathTrie {
	return &pathTrie{root: &pathNode{leaf: -1}, ids: make(map[string]int32)}
}

// id returns the id of a dotted path, adding it when new.
func (t *pathTrie) id(path string) int32 {
	if id, ok := t.ids[path]; ok {
		return id
	}
	id := int32(len(t.ids))
	t.ids[path] = id
	node := t.root
	rest := path
	for {
		seg := rest
		i := strings.IndexByte(rest, '.')
		if i >= 0 {
			seg = rest[:i]
		}
		next := node.direct([]byte(seg))
		if next == nil {
			next = &pathNode{leaf: -1}
			node.keys = append(node.keys, seg)
			node.children = append(node.children, next)
			node.added()
		}
		node = next
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	node.leaf = id
	return id
}

// trieWith returns a finished trie that has every path of the patterns:
// base itself when it has them all (it is not changed: tries are shared by
// the levels of a Matcher and read by matches in flight), otherwise a copy
// of base with the new paths added after its own, so that every path keeps
// its id. A nil base starts from no paths.
func trieWith(base *pathTrie, patterns []*Pattern) *pathTrie {
	var missing []string
	for _, p := range patterns {
		eachPath(p.items, func(path string) {
			if base != nil {
				if _, ok := base.ids[path]; ok {
					return
				}
			}
			missing = append(missing, path)
		})
	}
	if base != nil && len(missing) == 0 {
		return base
	}
	t := newPathTrie()
	if base != nil {
		paths := make([]string, len(base.ids))
		for path, id := range base.ids {
			paths[id] = path
		}
		for _, path := range paths {
			t.id(path)
		}
	}
	for _, path := range missing {
		t.id(path)
	}
	t.root.finish()
	return t
}

// eachPath calls fn with the path of every condition of items, "$or"s
// included, repeats included.
func eachPath(items []item, fn func(string)) {
	for _, it := range items {
		if it.cond != nil {
			fn(it.cond.path)
		}
		for _, alt := range it.or {
			eachPath(alt, fn)
		}
	}
}
