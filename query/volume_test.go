package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// scanOnly hides a store's StreamStats, so the query API reads lines.
type scanOnly struct{ storage.LogReader }

// volumeRecords are 3,000 lines over about 35 minutes from base, of 4
// services × 3 levels × 2 hosts, at irregular times, so that step
// buckets, blocks and the query range cut through each other.
func volumeRecords() []model.LogRecord {
	r := rand.New(rand.NewPCG(15, 15))
	services := []string{"checkout", "api", "worker", "db"}
	levels := []string{"info", "warn", "error"}
	recs := make([]model.LogRecord, 3000)
	for i := range recs {
		recs[i] = model.LogRecord{
			ID:        model.RecordID{byte(i), byte(i >> 8), 0x7e, 0x15},
			Timestamp: base + int64(i)*int64(700*time.Millisecond) + r.Int64N(int64(time.Second)), ObservedTimestamp: base,
			Service: services[r.IntN(len(services))], Level: levels[r.IntN(len(levels))], Host: "h" + strconv.Itoa(r.IntN(2)),
			Env: "prod", Source: "otlp",
			Message: fmt.Sprintf("level=info msg=%q n=%d", "served", i) + string(make([]byte, r.IntN(40))),
		}
	}
	return recs
}

// TestVolumeStatsMatchScanEmbedded: the embedded store's volumes from its
// block index and head equal those read line by line. The first two
// thirds of the lines are in blocks (the store was closed), the rest in
// the head.
func TestVolumeStatsMatchScanEmbedded(t *testing.T) {
	recs := volumeRecords()
	s := restartedStore(t, recs[:2000], recs[2000:])
	testVolumeStatsMatchScan(t, s, recs)
}

func TestVolumeStatsMatchScanES(t *testing.T) {
	s, o := esStoreWith(t, volumeRecords())
	testVolumeStatsMatchScan(t, s, volumeRecords())

	// A stream key too long for vigil.stream: StreamStats reads the
	// records instead.
	long := volumeRecords()[:1]
	long[0].ID[3], long[0].Host = 0x02, strings.Repeat("h", 9000)
	ctx := context.Background()
	if err := s.Write(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	testVolumeStatsMatchScan(t, s, append(volumeRecords(), long...))

	// Documents written before the mapping had vigil.message_bytes lack
	// it: StreamStats reads the records instead.
	old := volumeRecords()[:300]
	var bulk strings.Builder
	for i := range old {
		r := &old[i]
		r.ID[3] = 0x01
		r.Timestamp += int64(time.Millisecond)
		doc := map[string]any{
			"@timestamp": time.Unix(0, r.Timestamp).UTC().Format(time.RFC3339Nano),
			"event":      map[string]any{"id": fmt.Sprintf("%x", r.ID[:])},
			"message":    r.Message,
			"log":        map[string]any{"level": r.Level},
			"service":    map[string]any{"name": r.Service},
			"host":       map[string]any{"name": r.Host},
			"vigil":      map[string]any{"env": r.Env, "source": r.Source},
		}
		b, _ := json.Marshal(doc)
		fmt.Fprintf(&bulk, `{"create":{"_index":%q,"_id":"%x"}}`+"\n%s\n", o.IndexPrefix+time.Unix(0, r.Timestamp).UTC().Format("2006.01.02"), r.ID[:], b)
	}
	resp, err := http.Post(o.URLs[0]+"/_bulk?refresh=true", "application/x-ndjson", strings.NewReader(bulk.String()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"errors":false`) {
		t.Fatalf("bulk: %d %.500s", resp.StatusCode, b)
	}
	testVolumeStatsMatchScan(t, s, append(append(volumeRecords(), long...), old...))
}

func testVolumeStatsMatchScan(t *testing.T, s storage.LogReader, recs []model.LogRecord) {
	if _, ok := s.(storage.StreamStatsReader); !ok {
		t.Fatalf("%T keeps no stream statistics", s)
	}
	stats, scan := serveAPI(t, s), serveAPI(t, scanOnly{s})
	ns := func(d time.Duration) string { return strconv.FormatInt(base+int64(d), 10) }
	all := []string{"start", ns(-time.Minute), "end", ns(time.Hour)}
	cut := []string{"start", ns(7*time.Minute + 123456789), "end", ns(23*time.Minute + 987)}
	cases := []struct {
		path   string
		params []string
	}{
		{"index/volume", append([]string{"query", `{service_name=~".+"}`, "limit", "5000"}, all...)},
		{"index/volume", append([]string{"query", `{service_name=~".+"}`}, cut...)},
		{"index/volume", append([]string{"query", `{service="api", level!="warn"}`}, cut...)},
		{"index/volume", append([]string{"query", `{env="prod", host=~"h1|nope"}`, "targetLabels", "level,host"}, all...)},
		{"index/volume", append([]string{"query", `{env="prod"}`, "aggregateBy", "labels"}, cut...)},
		{"index/volume", append([]string{"query", `{env="prod"}`, "aggregateBy", "labels", "targetLabels", "level,service_name"}, all...)},
		{"index/volume", append([]string{"query", `{service_name="nope"}`}, all...)},
		{"index/volume", append([]string{"query", `{service_name=~".+", detected_level="info"}`}, cut...)},
		{"index/volume_range", append([]string{"query", `{service_name=~".+"}`, "step", "60"}, all...)},
		{"index/volume_range", append([]string{"query", `{service_name=~"api|db"}`, "step", "7.3"}, cut...)},
		{"index/volume_range", []string{"query", `{service_name=~"api|db"}`, "step", "7.3", "start", ns(7*time.Minute + 123*time.Millisecond), "end", ns(29 * time.Minute)}},
		{"index/volume_range", append([]string{"query", `{env="prod"}`, "step", "1", "targetLabels", "level"}, "start", ns(10*time.Minute+500*time.Millisecond), "end", ns(10*time.Minute+30*time.Second))},
		{"index/volume_range", append([]string{"query", `{env="prod"}`, "step", "300", "aggregateBy", "labels"}, cut...)},
		{"index/stats", append([]string{"query", `{service_name=~".+"}`}, all...)},
		{"index/stats", append([]string{"query", `{service="worker", host="h0"}`}, cut...)},
	}
	for _, c := range cases {
		var fromStats, fromScan any
		call(t, stats, "/loki/api/v1/"+c.path, nil, &fromStats, c.params...)
		call(t, scan, "/loki/api/v1/"+c.path, nil, &fromScan, c.params...)
		if !reflect.DeepEqual(fromStats, fromScan) {
			t.Errorf("%s %v:\n stats %v\n  scan %v", c.path, c.params, fromStats, fromScan)
		}
	}
	// Not vacuous: the first case sees every line.
	var st struct{ Entries, Bytes int }
	call(t, stats, "/loki/api/v1/index/stats", nil, &st, append([]string{"query", `{service_name=~".+"}`}, all...)...)
	bytes := 0
	for _, r := range recs {
		bytes += len(r.Message)
	}
	if st.Entries != len(recs) || st.Bytes != bytes {
		t.Errorf("index/stats: %+v; want %d entries, %d bytes", st, len(recs), bytes)
	}
}
