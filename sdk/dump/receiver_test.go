package dump_test

import (
	"encoding/json"
	"testing"

	"github.com/vigilhq/vigil/sdk/dump/dumptest"
)

// The intake the tests report to, and the helpers that read its events.
type receiver = dumptest.Receiver

var (
	newReceiver = dumptest.NewReceiver
	path        = dumptest.Path
)

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
