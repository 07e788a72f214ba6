package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// TailOptions configures /loki/api/v1/tail. Zero values take the defaults.
type TailOptions struct {
	// MaxConcurrent bounds the tails open at once (default 10, Loki's
	// max_concurrent_tail_requests).
	MaxConcurrent int
	// PollInterval is how often a tail reads the store for new lines
	// (default 1 s).
	PollInterval time.Duration
	// MaxMessageBytes bounds the lines of one message; a longer line is
	// cut to it (default 1 MiB).
	MaxMessageBytes int
	// Lookback is how far behind the newest poll each poll reads again
	// for lines that reached the store late: stamped before they became
	// visible (the pipeline's latency, Elasticsearch's refresh) or sent
	// by a shipper that fell behind (default 10 s). Lines already sent
	// are remembered for as long, up to tailMaxSeen of them, and never
	// sent twice.
	Lookback time.Duration
}

const (
	// maxTailDelay is the largest delay_for, in seconds (Loki's).
	maxTailDelay = 5
	// tailEntriesPerMessage is Loki's largest number of lines in one tail
	// message.
	tailEntriesPerMessage = 100
	// tailMessagesPerPoll bounds the lines one poll sends; the rest are
	// read at the next poll, so a burst delays lines but drops none.
	tailMessagesPerPoll = 10
	// tailWriteTimeout is how long a client may take to read one message.
	tailWriteTimeout = 10 * time.Second
	// tailMaxSeen bounds the lines a tail remembers as sent; beyond it the
	// lookback shrinks to the newest tailMaxSeen lines.
	tailMaxSeen = 100_000
)

// tailSet tracks the open tails so that the server bounds them and closes
// them when it stops: Server.Shutdown does not wait for or close
// hijacked connections such as websockets.
type tailSet struct {
	active atomic.Int64
	mu     sync.Mutex
	stopc  chan struct{}
	closed bool
	wg     sync.WaitGroup
}

func (t *tailSet) stopCh() chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopc == nil {
		t.stopc = make(chan struct{})
	}
	return t.stopc
}

// enter registers a tail; false once the server stops.
func (t *tailSet) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// Run returns when ctx ends, once every open tail is closed with "going
// away". Without Run, tails end only when their clients go.
func (a *API) Run(ctx context.Context) error {
	stop := a.tails.stopCh()
	<-ctx.Done()
	a.tails.mu.Lock()
	if !a.tails.closed {
		a.tails.closed = true
		close(stop)
	}
	a.tails.mu.Unlock()
	a.tails.wg.Wait()
	return nil
}

type tailRequest struct {
	sel   *logql.LogSelectorExpr
	pl    *logql.Pipeline
	start int64
	delay int64 // ns
	limit int
}

func parseTailRequest(r *http.Request, maxEntries int) (*tailRequest, error) {
	if err := r.ParseForm(); err != nil {
		return nil, badParam("cannot parse request parameters: %s", err)
	}
	q := r.FormValue("query")
	if q == "" {
		return nil, badParam("query parameter is required")
	}
	sel, err := logql.ParseLogSelector(q)
	if err != nil {
		return nil, err
	}
	pl, err := sel.Pipeline()
	if err != nil {
		return nil, err
	}
	limit, err := parseLimit(r, maxEntries)
	if err != nil {
		return nil, err
	}
	start, err := parseTime("start", r.FormValue("start"), time.Now().Add(-time.Hour).UnixNano())
	if err != nil {
		return nil, err
	}
	delay := 0
	if v := r.FormValue("delay_for"); v != "" {
		if delay, err = strconv.Atoi(v); err != nil || delay < 0 {
			return nil, badParam("invalid delay_for %q: want a whole number of seconds", v)
		}
		if delay > maxTailDelay {
			return nil, badParam("delay_for can't be greater than %d", maxTailDelay)
		}
	}
	return &tailRequest{sel: sel, pl: pl, start: start, delay: int64(delay) * int64(time.Second), limit: limit}, nil
}

// tail serves Grafana's Live view over a websocket: first the newest
// limit lines since start, then every new line matching the query as the
// store gets it, polled every PollInterval and held back delay_for
// seconds. Each message is
//
//	{"streams":[{"stream":{…},"values":[["<ns>","<line>"],…]}]}
//
// Lines are never dropped (they stay in the store until read), so
// dropped_entries, which Loki omits when empty, never appears.
func (a *API) tail(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	code := http.StatusSwitchingProtocols
	defer func() { a.metrics.Observe("tail", code, t0) }()
	req, err := parseTailRequest(r, a.opts.MaxEntries)
	if err != nil {
		code = http.StatusBadRequest
		http.Error(w, err.Error(), code)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		code = http.StatusBadRequest // Accept wrote the answer
		return
	}
	n := a.tails.active.Add(1)
	defer a.tails.active.Add(-1)
	limit := a.opts.Tail.MaxConcurrent
	if limit <= 0 {
		limit = 10
	}
	if n > int64(limit) {
		code = http.StatusBadRequest
		_ = c.Close(websocket.StatusInternalError, fmt.Sprintf("max concurrent tail requests limit exceeded, count > limit (%d > %d)", n, limit))
		return
	}
	stop := a.tails.stopCh()
	if !a.tails.enter() {
		_ = c.Close(websocket.StatusGoingAway, "server stopping") // closing anyway
		return
	}
	defer a.tails.wg.Done()
	// CloseRead answers the client's pings and close; its context ends
	// when the client goes.
	ctx, cancel := context.WithCancel(c.CloseRead(r.Context()))
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = a.runTail(ctx, c, req)
	select {
	case <-stop:
		_ = c.Close(websocket.StatusGoingAway, "server stopping") // closing anyway
		return
	default:
	}
	if ctx.Err() != nil {
		_ = c.CloseNow() // the client went
		return
	}
	code = http.StatusInternalServerError
	a.opts.Logger.Warn("tail failed", "err", err)
	msg := err.Error()
	if len(msg) > 120 { // a close reason has at most 123 bytes
		msg = strings.ToValidUTF8(msg[:120], "")
	}
	_ = c.Close(websocket.StatusInternalError, msg) // closing anyway
}

// tailCursor is where a tail goes on. Each poll reads from from to now:
// from trails the newest poll by the lookback, so that lines stamped
// before they became visible are still found, and the lines already sent
// in that range, kept in seen, are skipped.
type tailCursor struct {
	from int64 // polls read at or after from; it never goes back
	// done is the time up to which every line visible at the last poll
	// was sent: that poll's end, or the last line it sent when its limit
	// cut it short.
	done int64
	seen map[model.RecordID]int64 // lines sent at or after from, with their times
}

func (cur *tailCursor) sent(e tailEntry) { cur.seen[e.id] = e.ts }

// moveTo advances from to the given time (never back) and forgets the
// lines before it; if more than maxSeen lines remain, from moves on to
// the oldest time that keeps at most maxSeen.
func (cur *tailCursor) moveTo(from int64, maxSeen int) {
	from = max(from, cur.from)
	if len(cur.seen) > maxSeen {
		ts := make([]int64, 0, len(cur.seen))
		for _, t := range cur.seen {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		from = max(from, ts[len(ts)-maxSeen])
	}
	cur.from = from
	maps.DeleteFunc(cur.seen, func(_ model.RecordID, t int64) bool { return t < from })
}

type tailEntry struct {
	id     model.RecordID
	ts     int64
	labels model.Labels
	line   string
}

// runTail sends lines until ctx ends or the store fails.
func (a *API) runTail(ctx context.Context, c *websocket.Conn, req *tailRequest) error {
	maxBytes := a.opts.Tail.MaxMessageBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	interval := a.opts.Tail.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	lookback := int64(a.opts.Tail.Lookback)
	if lookback <= 0 {
		lookback = int64(10 * time.Second)
	}
	end := time.Now().UnixNano() - req.delay
	// A start in the future holds the tail back until then.
	cur := &tailCursor{from: req.start, done: max(end, req.start), seen: map[model.RecordID]int64{}}
	if end > req.start {
		first, err := a.tailSelect(ctx, req, storage.SelectParams{Start: req.start, End: end, Backward: true}, nil, req.limit, maxBytes)
		if err != nil {
			return err
		}
		slices.Reverse(first)
		if err := sendTail(ctx, c, first, maxBytes); err != nil {
			return err
		}
		for _, e := range first {
			cur.sent(e)
		}
		// The first answer holds the newest limit lines: older ones were
		// left out on purpose and must not come later.
		if len(first) == req.limit && len(first) > 0 {
			cur.from = first[0].ts
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		end := time.Now().UnixNano() - req.delay
		cur.moveTo(min(cur.done, end-lookback), tailMaxSeen)
		if end <= cur.from {
			continue
		}
		limit := tailEntriesPerMessage * tailMessagesPerPoll
		lines, err := a.tailSelect(ctx, req, storage.SelectParams{Start: cur.from, End: end}, cur.seen, limit, maxBytes)
		if err != nil {
			return err
		}
		if err := sendTail(ctx, c, lines, maxBytes); err != nil {
			return err
		}
		for _, e := range lines {
			cur.sent(e)
		}
		// Lines come oldest first: a poll cut short is done up to its
		// last line.
		if len(lines) < limit {
			cur.done = end
		} else {
			cur.done = lines[len(lines)-1].ts
		}
	}
}

// tailSelect reads up to limit lines matching req in p's range, skipping
// the ids in skip.
func (a *API) tailSelect(ctx context.Context, req *tailRequest, p storage.SelectParams, skip map[model.RecordID]int64, limit, maxBytes int) ([]tailEntry, error) {
	p.Matchers = req.sel.Matchers
	p.Contains, p.ContainsFold = req.sel.RequiredSubstrings(), req.sel.RequiredFoldSubstrings()
	var out []tailEntry
	var lblBuf model.Labels
	err := a.store.Select(ctx, p, func(r *storage.Row) bool {
		if _, ok := skip[r.ID]; ok {
			return true
		}
		lbls, keep := req.pl.Process(r.Message, withTraceLabels(r, &lblBuf))
		if !keep {
			return true
		}
		line := r.Message
		if len(line) > maxBytes {
			line = line[:maxBytes]
		}
		out = append(out, tailEntry{id: r.ID, ts: r.Timestamp, labels: slices.Clone(lbls), line: string([]byte(line))})
		return len(out) < limit
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, err
}

type tailStream struct {
	Stream map[string]string `json:"stream"`
	Values [][2]string       `json:"values"`
}

type tailMessage struct {
	Streams []tailStream `json:"streams"`
}

// sendTail sends entries, in order, in messages of at most
// tailEntriesPerMessage lines and maxBytes bytes of lines.
func sendTail(ctx context.Context, c *websocket.Conn, entries []tailEntry, maxBytes int) error {
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < tailEntriesPerMessage && (n == 0 || size+len(entries[n].line) <= maxBytes) {
			size += len(entries[n].line)
			n++
		}
		if err := writeTailMessage(ctx, c, entries[:n]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

func writeTailMessage(ctx context.Context, c *websocket.Conn, entries []tailEntry) error {
	var msg tailMessage
	var keyBuf []byte
	idx := map[string]int{}
	for _, e := range entries {
		keyBuf = appendLabelsKey(keyBuf[:0], e.labels)
		i, ok := idx[string(keyBuf)]
		if !ok {
			i = len(msg.Streams)
			idx[string(keyBuf)] = i
			msg.Streams = append(msg.Streams, tailStream{Stream: e.labels.Map()})
		}
		msg.Streams[i].Values = append(msg.Streams[i].Values, [2]string{strconv.FormatInt(e.ts, 10), e.line})
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	// The write is bounded by its timeout only: coder/websocket closes the
	// connection when a write's context ends, and a tail that stops (the
	// daemon stopping) finishes its message, then sends a close frame.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tailWriteTimeout)
	defer cancel()
	return c.Write(wctx, websocket.MessageText, b)
}
