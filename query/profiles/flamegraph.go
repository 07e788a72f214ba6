package profiles

import (
	"sort"

	"github.com/google/pprof/profile"
)

// A flame graph is built from a merged pprof profile: samples' stacks by
// function name, root first, one sample type. Pyroscope and Grafana's
// flame graph read it as names and levels: level k lists the nodes at
// depth k left to right, four numbers each — the x offset from the end of
// the previous node of the level, the total, the self value and the index
// of the name — the first level being the root, named "total". A diff
// carries seven numbers per node: offset, total and self of the left
// (base) profile, the same of the right one, and the name.

const (
	defaultMaxNodes = 8192
	maxMaxNodes     = 1 << 16
	otherName       = "other"
)

type fgNode struct {
	name     int
	total    [2]int64 // left, right
	self     [2]int64
	children []*fgNode
}

func (n *fgNode) child(name int) *fgNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	c := &fgNode{name: name}
	n.children = append(n.children, c)
	return c
}

// fgTree is a tree of stacks by function name.
type fgTree struct {
	names []string
	index map[string]int
	root  *fgNode
}

func newFGTree() *fgTree {
	t := &fgTree{names: []string{"total"}, index: map[string]int{"total": 0}, root: &fgNode{}}
	return t
}

func (t *fgTree) name(s string) int {
	if i, ok := t.index[s]; ok {
		return i
	}
	t.index[s] = len(t.names)
	t.names = append(t.names, s)
	return len(t.names) - 1
}

// stackNames returns the function names of a sample's stack, root first,
// inlined frames expanded.
func stackNames(s *profile.Sample, buf []string) []string {
	buf = buf[:0]
	for i := len(s.Location) - 1; i >= 0; i-- {
		loc := s.Location[i]
		if len(loc.Line) == 0 {
			buf = append(buf, addrName(loc))
			continue
		}
		for j := len(loc.Line) - 1; j >= 0; j-- {
			if fn := loc.Line[j].Function; fn != nil && fn.Name != "" {
				buf = append(buf, fn.Name)
			} else {
				buf = append(buf, addrName(loc))
			}
		}
	}
	return buf
}

func addrName(loc *profile.Location) string {
	const hex = "0123456789abcdef"
	b := []byte("0x")
	started := false
	for shift := 60; shift >= 0; shift -= 4 {
		d := (loc.Address >> uint(shift)) & 0xf
		if d != 0 || started || shift == 0 {
			started = true
			b = append(b, hex[d])
		}
	}
	return string(b)
}

// add adds the values at index idx of p's samples to side (0 left, 1
// right) of the tree.
func (t *fgTree) add(p *profile.Profile, idx, side int) {
	var buf []string
	for _, s := range p.Sample {
		v := s.Value[idx]
		if v == 0 {
			continue
		}
		buf = stackNames(s, buf)
		n := t.root
		n.total[side] += v
		for _, fn := range buf {
			n = n.child(t.name(fn))
			n.total[side] += v
		}
		n.self[side] += v
	}
}

// truncate keeps the maxNodes nodes with the largest totals (left plus
// right); the others are folded into an "other" child of their parent.
func (t *fgTree) truncate(maxNodes int) {
	var totals []int64
	var walk func(n *fgNode)
	walk = func(n *fgNode) {
		totals = append(totals, n.total[0]+n.total[1])
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(t.root)
	if len(totals) <= maxNodes {
		return
	}
	sort.Slice(totals, func(i, j int) bool { return totals[i] > totals[j] })
	min := totals[maxNodes-1]
	other := t.name(otherName)
	var cut func(n *fgNode)
	cut = func(n *fgNode) {
		kept := n.children[:0]
		var o *fgNode
		for _, c := range n.children {
			if c.total[0]+c.total[1] >= min && c.name != other {
				kept = append(kept, c)
				cut(c)
				continue
			}
			if o == nil {
				o = &fgNode{name: other}
			}
			for k := 0; k < 2; k++ {
				o.total[k] += c.total[k]
				o.self[k] += c.total[k]
			}
		}
		if o != nil {
			kept = append(kept, o)
		}
		n.children = kept
	}
	cut(t.root)
}

// levels encodes the tree; diff selects the seven-number encoding.
func (t *fgTree) levels(diff bool) (levels [][]int64, maxSelf int64) {
	var ends [][2]int64 // per level, the end x of the last node, left and right
	var walk func(n *fgNode, depth int, x [2]int64)
	walk = func(n *fgNode, depth int, x [2]int64) {
		if depth == len(levels) {
			levels = append(levels, nil)
			ends = append(ends, [2]int64{})
		}
		if diff {
			levels[depth] = append(levels[depth],
				x[0]-ends[depth][0], n.total[0], n.self[0],
				x[1]-ends[depth][1], n.total[1], n.self[1], int64(n.name))
			maxSelf = max(maxSelf, n.self[0], n.self[1])
		} else {
			levels[depth] = append(levels[depth], x[0]-ends[depth][0], n.total[0], n.self[0], int64(n.name))
			maxSelf = max(maxSelf, n.self[0])
		}
		ends[depth] = [2]int64{x[0] + n.total[0], x[1] + n.total[1]}
		sort.Slice(n.children, func(i, j int) bool { return t.names[n.children[i].name] < t.names[n.children[j].name] })
		cx := x
		for _, c := range n.children {
			walk(c, depth+1, cx)
			cx[0] += c.total[0]
			cx[1] += c.total[1]
		}
	}
	walk(t.root, 0, [2]int64{})
	return levels, maxSelf
}

func clampMaxNodes(req *int64) int {
	if req == nil || *req <= 0 {
		return defaultMaxNodes
	}
	if *req > maxMaxNodes {
		return maxMaxNodes
	}
	return int(*req)
}
