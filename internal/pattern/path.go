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
	index    map[string]*pathNode // set when there are many children
	leaf     int32                // the path's id when a pattern tests it, else -1
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
	if n.index != nil {
		return n.index[string(seg)]
	}
	for i, k := range n.keys {
		if k == string(seg) {
			return n.children[i]
		}
	}
	return nil
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
			if node.index != nil || len(node.keys) > linearChildren {
				if node.index == nil {
					node.index = make(map[string]*pathNode, len(node.keys))
					for j, k := range node.keys {
						node.index[k] = node.children[j]
					}
				}
				node.index[seg] = next
			}
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
