package esstore

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// The shipped Kibana data view must point at the indices the store writes.
func TestKibanaDataView(t *testing.T) {
	f, err := os.Open("../../deploy/kibana/vigil-logs.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var obj struct {
			Type       string
			ID         string
			Attributes struct{ Title, TimeFieldName string }
		}
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if obj.Type == "index-pattern" {
			found = true
			if want := DefaultOptions().IndexPrefix + "*"; obj.Attributes.Title != want || obj.Attributes.TimeFieldName != fTimestamp || obj.ID == "" {
				t.Errorf("data view %+v: want title %s, time field %s and an id", obj, want, fTimestamp)
			}
		}
	}
	if !found {
		t.Error("no index-pattern saved object")
	}
}
