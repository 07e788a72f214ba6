package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/dumptest"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

// BenchmarkTenantStoresCost opens the embedded stores of every signal for
// 100 tenants, each written one record of each signal, and reports what a
// tenant costs while its stores are open: heap and file descriptors.
//
//	go test -run '^$' -bench TenantStoresCost -benchtime 1x ./cmd/vigil/
func BenchmarkTenantStoresCost(b *testing.B) {
	const tenants = 100
	for b.Loop() {
		d := newDaemon(slog.New(slog.DiscardHandler))
		bk := &backends{dataDir: b.TempDir()}
		stores := openSignalStores(d, bk)
		logs, spans, dumps, profiles := stores.logs, stores.spans, stores.dumps, stores.profiles
		heap0, fds0 := heapInUse(), openFiles(b)
		now := time.Now()
		pg := profiletest.NewProgram(1, 10, 10)
		for i := range tenants {
			ctx := auth.WithTenant(context.Background(), fmt.Sprintf("team-%03d", i))
			id := byte(i)
			if err := (routedLogs{logs}).Write(ctx, []model.LogRecord{{ID: model.RecordID{id}, Timestamp: now.UnixNano(), Service: "svc", Message: "m"}}); err != nil {
				b.Fatal(err)
			}
			if err := (routedSpans{spans}).Write(ctx, []model.Span{{TraceID: model.TraceID{id}, SpanID: model.SpanID{id}, Name: "op", StartTime: now.UnixNano(), Duration: 1000, Service: "svc"}}); err != nil {
				b.Fatal(err)
			}
			if _, err := (routedDumps{dumps}).WriteDumps(ctx, []storage.GroupedDump{dumptest.Event(fmt.Sprintf("%032x", i), "7", now)}); err != nil {
				b.Fatal(err)
			}
			if err := (routedProfiles{profiles}).Write(ctx, []model.Profile{model.NewProfile("cpu", profiletest.Labels("service", "svc"), now.UnixNano(), 10e9, pg.CPUProfile(i, now.UnixNano(), false))}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(heapInUse()-heap0)/tenants/(1<<20), "heap-MiB/tenant")
		b.ReportMetric(float64(openFiles(b)-fds0)/tenants, "fds/tenant")
		if err := stores.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func openFiles(b *testing.B) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}
