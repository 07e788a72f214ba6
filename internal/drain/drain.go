// Package drain mines log patterns with the Drain algorithm (He et al.,
// "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS
// 2017), the algorithm Grafana Loki uses for its patterns.
//
// Each line is tokenized (see Tokenize) and routed through a prefix tree
// of fixed depth: first by its number of tokens, then by its first tokens,
// where a token holding a digit, or one met after a node has MaxChildren
// children, takes the wildcard branch. The leaf holds clusters; the line
// joins the most similar one (the share of positions whose tokens are
// equal) if that share reaches SimThreshold, and every position where the
// two differ becomes the placeholder "<_>". Otherwise the line starts a
// cluster of its own.
//
// Memory is bounded: at most MaxClusters clusters are kept, the least
// recently matched one is evicted first.
package drain

import (
	"container/list"
	"slices"
	"strings"
)

// Placeholder stands for the varying tokens of a pattern.
const Placeholder = "<_>"

// Config tunes the miner.
type Config struct {
	// Depth of the prefix tree, counting the root and the leaf level, as
	// in the paper: Depth-2 tokens route a line. At least 3.
	Depth int
	// SimThreshold is the least share of equal tokens for a line to join
	// a cluster, in (0, 1].
	SimThreshold float64
	// MaxChildren bounds the children of an inner node; further tokens
	// take the wildcard branch.
	MaxChildren int
	// MaxClusters bounds the clusters kept.
	MaxClusters int
	// MaxLineLength: longer lines are not mined (Train returns nil).
	MaxLineLength int
}

// DefaultConfig returns the paper's tree depth and Loki's similarity
// threshold and limits.
func DefaultConfig() Config {
	return Config{Depth: 4, SimThreshold: 0.3, MaxChildren: 15, MaxClusters: 300, MaxLineLength: 3000}
}

// Cluster is a group of lines sharing a pattern.
type Cluster struct {
	ID     int
	Size   int64 // lines that joined the cluster
	tokens []Token
	// Counts is for the caller (lines per time bucket, say); the miner
	// never reads it, and it goes with the cluster when it is evicted.
	Counts map[int64]int64

	leaf *node
	elem *list.Element
}

// Pattern returns the cluster's pattern: its tokens, "<_>" where lines
// differ.
func (c *Cluster) Pattern() string { return Join(c.tokens) }

type node struct {
	children map[string]*node
	clusters []*Cluster
}

// wildcard is the key of the branch of tokens that vary.
const wildcard = "\x00*"

// Drain is a pattern miner. It is not safe for concurrent use.
type Drain struct {
	cfg    Config
	root   map[int]*node // by token count
	lru    *list.List    // of *Cluster, most recently matched first
	nextID int
	buf    []Token // the tokens of the line being trained

	// OnEvict, if set, is called with each cluster evicted to stay within
	// MaxClusters, before it is forgotten (its Counts are the caller's to
	// account for).
	OnEvict func(*Cluster)
}

// New returns an empty miner.
func New(cfg Config) *Drain {
	def := DefaultConfig()
	if cfg.Depth < 3 {
		cfg.Depth = def.Depth
	}
	if cfg.SimThreshold <= 0 || cfg.SimThreshold > 1 {
		cfg.SimThreshold = def.SimThreshold
	}
	if cfg.MaxChildren < 1 {
		cfg.MaxChildren = def.MaxChildren
	}
	if cfg.MaxClusters < 1 {
		cfg.MaxClusters = def.MaxClusters
	}
	if cfg.MaxLineLength < 1 {
		cfg.MaxLineLength = def.MaxLineLength
	}
	return &Drain{cfg: cfg, root: map[int]*node{}, lru: list.New()}
}

// Train adds line and returns its cluster, or nil for an empty line or
// one longer than MaxLineLength. The cluster's pattern may widen.
func (d *Drain) Train(line string) *Cluster {
	if len(line) > d.cfg.MaxLineLength {
		return nil
	}
	d.buf = appendTokens(d.buf[:0], line)
	toks := d.buf
	if len(toks) == 0 {
		return nil
	}
	leaf := d.leaf(toks)
	if c := d.best(leaf, toks); c != nil {
		for i, t := range toks {
			if c.tokens[i].Text != t.Text {
				c.tokens[i].Text = Placeholder
			}
		}
		c.Size++
		d.lru.MoveToFront(c.elem)
		return c
	}
	d.nextID++
	c := &Cluster{ID: d.nextID, Size: 1, tokens: slices.Clone(toks), leaf: leaf}
	for i := range c.tokens {
		// Own the text: the line's memory may be reused by the caller.
		c.tokens[i].Text = strings.Clone(c.tokens[i].Text)
	}
	c.elem = d.lru.PushFront(c)
	leaf.clusters = append(leaf.clusters, c)
	if d.lru.Len() > d.cfg.MaxClusters {
		d.evict(d.lru.Back().Value.(*Cluster))
	}
	return c
}

// Len returns the number of clusters kept.
func (d *Drain) Len() int { return d.lru.Len() }

// Clusters returns the clusters kept, most recently matched first.
func (d *Drain) Clusters() []*Cluster {
	out := make([]*Cluster, 0, d.lru.Len())
	for e := d.lru.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*Cluster))
	}
	return out
}

func (d *Drain) evict(c *Cluster) {
	if d.OnEvict != nil {
		d.OnEvict(c)
	}
	d.lru.Remove(c.elem)
	cs := c.leaf.clusters
	for i, x := range cs {
		if x == c {
			cs[i] = cs[len(cs)-1]
			cs[len(cs)-1] = nil
			c.leaf.clusters = cs[:len(cs)-1]
			break
		}
	}
}

// leaf walks (and grows) the prefix tree to the leaf for toks.
func (d *Drain) leaf(toks []Token) *node {
	n := d.root[len(toks)]
	if n == nil {
		n = &node{children: map[string]*node{}}
		d.root[len(toks)] = n
	}
	depth := min(d.cfg.Depth-2, len(toks))
	for _, t := range toks[:depth] {
		key := t.Text
		if hasDigit(key) {
			key = wildcard
		}
		next := n.children[key]
		if next == nil {
			if key != wildcard && len(n.children) >= d.cfg.MaxChildren {
				key = wildcard
				next = n.children[key]
			}
			if next == nil {
				next = &node{children: map[string]*node{}}
				n.children[key] = next
			}
		}
		n = next
	}
	return n
}

// best returns the cluster of leaf most similar to toks, if similar enough.
func (d *Drain) best(leaf *node, toks []Token) *Cluster {
	var best *Cluster
	bestSim, bestParams := -1.0, -1
	for _, c := range leaf.clusters {
		same, params := 0, 0
		for i, t := range c.tokens {
			switch {
			case t.Text == Placeholder:
				params++
			case t.Text == toks[i].Text && t.Glued == toks[i].Glued:
				same++
			}
		}
		sim := float64(same) / float64(len(toks))
		if sim > bestSim || (sim == bestSim && params > bestParams) {
			best, bestSim, bestParams = c, sim, params
		}
	}
	if best == nil || bestSim < d.cfg.SimThreshold {
		return nil
	}
	return best
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}
