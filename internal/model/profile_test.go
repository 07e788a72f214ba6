package model

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestProfileRecordRoundTrip(t *testing.T) {
	p := NewProfile(ProfileCPU, map[string]string{"service": "checkout", "job": "api", "instance": "10.0.0.7:8080", "env": ""}, 1_700_000_000_000_000_000, 10e9, []byte("\x1f\x8bpprof"))
	if got, want := len(p.Labels), 3; got != want {
		t.Fatalf("labels: got %d, want %d (empty values dropped)", got, want)
	}
	b := AppendProfileRecord(nil, &p)
	got, err := DecodeProfileRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("got %+v, want %+v", got, p)
	}
	if k := ProfileRecordKey(&p); string(k) != "checkout" {
		t.Fatalf("key: got %q, want checkout", k)
	}
}

func TestProfileIDDistinguishes(t *testing.T) {
	ls := Labels{{Name: "service", Value: "a"}}
	base := ProfileID("cpu", ls, 1, 2, []byte("x"))
	if base != ProfileID("cpu", ls, 1, 2, []byte("x")) {
		t.Fatal("same profile, different ids")
	}
	for name, id := range map[string]RecordID{
		"type":     ProfileID("heap", ls, 1, 2, []byte("x")),
		"labels":   ProfileID("cpu", Labels{{Name: "service", Value: "b"}}, 1, 2, []byte("x")),
		"time":     ProfileID("cpu", ls, 3, 2, []byte("x")),
		"duration": ProfileID("cpu", ls, 1, 3, []byte("x")),
		"bytes":    ProfileID("cpu", ls, 1, 2, []byte("y")),
	} {
		if id == base {
			t.Errorf("a profile differing in %s has the same id", name)
		}
	}
}

func TestDecodeProfileRecordErrors(t *testing.T) {
	good := NewProfile("cpu", map[string]string{"service": "a"}, 5, 0, []byte("p"))
	rec := AppendProfileRecord(nil, &good)
	f := func(name string, b []byte, want string) {
		t.Helper()
		_, err := DecodeProfileRecord(b)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, want)
		}
	}
	f("empty", nil, "empty")
	f("version", append([]byte{9}, rec[1:]...), "version 9")
	f("cut", rec[:5], "cut short")
	noPprof := good
	noPprof.Pprof = nil
	f("no pprof", AppendProfileRecord(nil, &noPprof), "no pprof bytes")
	badType := good
	badType.Type = "cpu{x}"
	f("type", AppendProfileRecord(nil, &badType), `profile type "cpu{x}"`)
	unsorted := good
	unsorted.Labels = Labels{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}
	f("unsorted", AppendProfileRecord(nil, &unsorted), "not sorted")
}

func FuzzDecodeProfileRecord(f *testing.F) {
	p := NewProfile("cpu", map[string]string{"service": "a", "job": "j"}, 5, 10, []byte("\x1f\x8b"))
	f.Add(AppendProfileRecord(nil, &p))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeProfileRecord(b)
		if err != nil {
			return
		}
		again := AppendProfileRecord(nil, &got)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding a decoded record changed it: %x != %x", again, b)
		}
	})
}
