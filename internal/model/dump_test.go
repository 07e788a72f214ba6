package model

import (
	"fmt"
	"testing"
)

func TestDumpSearchTagsAndText(t *testing.T) {
	d := Dump{Level: "fatal", Environment: "prod", Release: "v2", ServerName: "h1", Message: "Disk FULL", Transaction: "GET /cart",
		Exceptions: []Exception{{Type: "runtime.Error", Value: "Index out of range"}},
		Tags:       []Attr{{Key: "region", Value: "EU"}, {Key: "release", Value: "v2-tagged"}}}
	if got := fmt.Sprint(d.SearchTags()); got != "[{environment prod} {level fatal} {region EU} {release v2-tagged} {server_name h1}]" {
		t.Errorf("SearchTags = %s; want the event's tags winning over its release, sorted", got)
	}
	if got, want := d.SearchText(1000), "disk full\nruntime.error\nindex out of range\nget /cart\nprod\nfatal\neu\nv2-tagged\nh1\n"; got != want {
		t.Errorf("SearchText = %q; want %q", got, want)
	}
	if got := d.SearchText(10); got != "disk full\n" {
		t.Errorf("SearchText(10) = %q; want it to stop once it holds 10 bytes", got)
	}
}
