// Package estest holds what the tests of Vigil's Elasticsearch packages
// share.
package estest

import (
	"os"
	"testing"
)

// URL returns the Elasticsearch URL of VIGIL_TEST_ES. Without it the test
// is skipped, or fails when VIGIL_REQUIRE_SERVICES=1.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("VIGIL_TEST_ES")
	if u == "" {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal("VIGIL_TEST_ES is not set and VIGIL_REQUIRE_SERVICES=1: start Elasticsearch with deploy/local/elasticsearch.sh up and set VIGIL_TEST_ES=http://127.0.0.1:9200")
		}
		t.Skip("VIGIL_TEST_ES is not set")
	}
	return u
}
