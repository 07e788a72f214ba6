package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
)

// Gap is a key whose stored count differs from its produced count.
type Gap struct {
	Key
	Produced, Stored int64
}

// Missing is how many records are not stored (negative: more stored than
// the ledger knows of, e.g. after a machine crash lost ledger lines, or
// records another collector produced).
func (g Gap) Missing() int64 { return g.Produced - g.Stored }

// Compare returns the keys of produced whose stored count is lower, and,
// with surplus, also those whose stored count is higher, ordered by minute.
func Compare(produced, stored map[Key]int64, surplus bool) []Gap {
	var gaps []Gap
	for k, p := range produced {
		if s := stored[k]; s < p || (surplus && s > p) {
			gaps = append(gaps, Gap{k, p, s})
		}
	}
	sort.Slice(gaps, func(i, j int) bool {
		a, b := gaps[i], gaps[j]
		if a.Minute != b.Minute {
			return a.Minute < b.Minute
		}
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Source < b.Source
	})
	return gaps
}

// StoreAPI is the Loki API (Vigil's query) StoredCounts asks.
type StoreAPI struct {
	Client  *http.Client
	BaseURL string
	// Key, when set, is sent as a Bearer token: a key of the tenant asked
	// for. Without one the tenant is asked for by X-Scope-OrgID alone,
	// which Vigil believes from the trusted_proxies of --auth.config (and
	// ignores without authentication, where every record is the default
	// tenant's).
	Key string
}

// StoredCounts asks the store of tenant for the stored count per minute,
// service and source in [from, to), one chunk of up to 6 hours per
// request; progress is called after each chunk.
func (a StoreAPI) StoredCounts(ctx context.Context, tenant string, from, to time.Time, progress func(done, total time.Duration)) (map[Key]int64, error) {
	out := map[Key]int64{}
	from = from.Truncate(time.Minute)
	const chunk = 6 * time.Hour
	for start := from; start.Before(to); start = start.Add(chunk) {
		end := start.Add(chunk)
		if end.After(to) {
			end = to
		}
		// count_over_time at t counts (t-1m, t]: evaluating at the last
		// nanosecond of each minute counts exactly that minute.
		v := url.Values{
			"query": {`sum by (service, source) (count_over_time({source=~".+"}[1m]))`},
			"start": {strconv.FormatInt(start.Add(time.Minute-1).UnixNano(), 10)},
			"end":   {strconv.FormatInt(end.Add(-1).UnixNano(), 10)},
			"step":  {"60"},
		}
		req, err := http.NewRequestWithContext(ctx, "GET", a.BaseURL+"/loki/api/v1/query_range?"+v.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set(auth.OrgIDHeader, tenant)
		if a.Key != "" {
			req.Header.Set("Authorization", "Bearer "+a.Key)
		}
		resp, err := a.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot query the store: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close() // read above; nothing is lost on a failed close
			return nil, fmt.Errorf("tenant %q: the store count query answered %s: %s", tenant, resp.Status, strings.TrimSpace(string(b)))
		}
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		_ = resp.Body.Close() // decoded above; nothing is lost on a failed close
		if err != nil {
			return nil, fmt.Errorf("tenant %q: cannot read the store count answer: %w", tenant, err)
		}
		for _, s := range r.Data.Result {
			for _, p := range s.Values {
				ts, _ := p[0].(float64)
				n, _ := strconv.ParseInt(fmt.Sprint(p[1]), 10, 64)
				minute := int64(ts+0.5)/60*60 - 60 // the point sits at the minute's last instant
				out[Key{Minute: minute, Tenant: tenant, Service: s.Metric["service"], Source: s.Metric["source"]}] += n
			}
		}
		if progress != nil {
			progress(end.Sub(from), to.Sub(from))
		}
	}
	return out, nil
}
