package config

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// A key path names a place in the document the way messages show it: table keys joined
// with ".", array elements as "[i]", e.g. "routes[1].object". The decoder builds the same
// paths, so they are also the index's keys.

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// join appends key to path, quoting it when TOML would.
func join(path, key string) string {
	if !bareKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func elem(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

type pos struct{ line, col int }

// place is where a key and its value start.
type place struct{ key, val pos }

// index maps key paths to their place in the document.
type index map[string]place

// find returns where path is, or failing that where its nearest enclosing table is.
func (x index) find(path string, atKey bool) pos {
	for {
		if p, ok := x[path]; ok {
			if atKey {
				return p.key
			}
			return p.val
		}
		if path == "" {
			return pos{}
		}
		path = parent(path)
	}
}

// parent strips the last key or element of path.
func parent(path string) string {
	inQuote := false
	cut := 0
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			cut = i
		}
	}
	return path[:cut]
}

// buildIndex walks the document with go-toml's position-keeping parser. It is only called
// on documents toml.Unmarshal accepted, so the parser cannot fail half-way.
func buildIndex(data []byte) index {
	b := indexer{x: index{}, data: data, lines: lineStarts(data), arrays: map[string]int{}}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = b.header(n)
		case unstable.KeyValue:
			b.keyval(table, n)
		}
	}
	return b.x
}

type indexer struct {
	x     index
	data  []byte
	lines []int
	// arrays counts the elements of each array of tables so far, to number [[x]] headers.
	arrays map[string]int
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func (b *indexer) at(n *unstable.Node) pos { return b.offset(int(n.Raw.Offset)) }

func (b *indexer) offset(off int) pos {
	line := sort.Search(len(b.lines), func(i int) bool { return b.lines[i] > off })
	return pos{line: line, col: utf8.RuneCount(b.data[b.lines[line-1]:off]) + 1}
}

// runeColumn turns a 1-based byte column of line (as go-toml reports them) into a column
// in runes.
func runeColumn(data []byte, line, col int) int {
	start := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[start:], '\n')
		if i < 0 {
			return col
		}
		start += i + 1
	}
	end := start + col - 1
	if col < 1 || end > len(data) {
		return col
	}
	return utf8.RuneCount(data[start:end]) + 1
}

// add records the first place a path shows up: a table may be extended later, but its first
// mention is where a reader looks for it.
func (b *indexer) add(path string, key, val pos) {
	if _, ok := b.x[path]; !ok {
		b.x[path] = place{key: key, val: val}
	}
}

// header indexes a [table] or [[array]] header and returns the path it opens.
func (b *indexer) header(n *unstable.Node) string {
	path := ""
	it := n.Key()
	var at pos
	for it.Next() {
		k := it.Node()
		if at.line == 0 {
			// Point at the header's opening bracket, not its first key.
			off := int(k.Raw.Offset)
			for off > 0 && strings.IndexByte(" \t[", b.data[off-1]) >= 0 {
				off--
			}
			at = b.offset(off)
		}
		path = join(path, string(k.Data))
		b.add(path, at, at)
		if it.IsLast() && n.Kind == unstable.ArrayTable {
			i := b.arrays[path]
			b.arrays[path] = i + 1
			path = elem(path, i)
			b.add(path, at, at)
		} else if i, ok := b.arrays[path]; ok {
			// A header inside an array of tables extends its last element.
			path = elem(path, i-1)
		}
	}
	return path
}

// keyval indexes key = value under table, and whatever the value holds.
func (b *indexer) keyval(table string, n *unstable.Node) {
	path := table
	var at pos
	it := n.Key()
	for it.Next() {
		k := it.Node()
		path = join(path, string(k.Data))
		at = b.at(k)
		if !it.IsLast() {
			b.add(path, at, at)
		}
	}
	b.value(path, at, n.Value())
}

// value indexes a value found at path; key is where its key is.
func (b *indexer) value(path string, key pos, v *unstable.Node) {
	val := key
	if v.Raw.Length > 0 {
		// Arrays carry no range; they are placed at their key.
		val = b.at(v)
	}
	b.add(path, key, val)
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			b.keyval(path, it.Node())
		}
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			c := it.Node()
			at := val
			if c.Raw.Length > 0 {
				at = b.at(c)
			}
			b.value(elem(path, i), at, c)
		}
	}
}
