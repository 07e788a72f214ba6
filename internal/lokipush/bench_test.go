package lokipush

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// benchPush is a Promtail-sized push: 10 streams of 100 lines, a third of
// them with structured metadata.
func benchPush() (pb, js []byte, lines int) {
	var streams []pbStream
	var j strings.Builder
	j.WriteString(`{"streams":[`)
	for s := 0; s < 10; s++ {
		labels := fmt.Sprintf(`{job="app-%d", filename="/var/log/app-%d.log", host="web-%d", env="prod"}`, s, s, s%3)
		st := pbStream{labels: labels}
		if s > 0 {
			j.WriteByte(',')
		}
		fmt.Fprintf(&j, `{"stream":{"job":"app-%d","filename":"/var/log/app-%d.log","host":"web-%d","env":"prod"},"values":[`, s, s, s%3)
		for i := 0; i < 100; i++ {
			ts := int64(1_700_000_000_000_000_000 + s*1_000_000 + i)
			line := fmt.Sprintf(`level=info ts=2024-05-01T12:00:00Z caller=handler.go:%d msg="request served" path=/api/v1/items/%d status=200 duration=%dms`, i, i*7, i%50)
			e := pbEntry{ts: ts, line: line}
			if i > 0 {
				j.WriteByte(',')
			}
			fmt.Fprintf(&j, `[%q,%s`, strconv.FormatInt(ts, 10), strconv.Quote(line))
			if i%3 == 0 {
				e.metadata = [][2]string{{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"}, {"user_id", strconv.Itoa(i)}}
				j.WriteString(`,{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user_id":"` + strconv.Itoa(i) + `"}`)
			}
			j.WriteByte(']')
			st.entries = append(st.entries, e)
		}
		j.WriteString(`]}`)
		streams = append(streams, st)
	}
	j.WriteString(`]}`)
	return snappyRequest(streams...), []byte(j.String()), 1000
}

func BenchmarkDecode(b *testing.B) {
	pb, js, lines := benchPush()
	for _, bc := range []struct {
		name string
		body []byte
		f    Format
	}{{"protobuf", pb, Protobuf}, {"json", js, JSON}} {
		b.Run(bc.name, func(b *testing.B) {
			d := &Decoder{Options: Options{MaxLineBytes: DefaultMaxLineBytes}}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				res, err := d.Decode(nil, bc.body, bc.f, 1)
				if err != nil || len(res.Records) != lines {
					b.Fatalf("%v, %d records", err, len(res.Records))
				}
			}
			b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
