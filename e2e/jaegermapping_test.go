//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkMappingAgainstJaeger compares the indices Vigil wrote under
// vigilPrefix on day with indices made from the templates Jaeger itself
// generates (jaeger-esmapping-generator, ES 8) under a prefix of their own:
// the same index names, every field Jaeger maps mapped the same way, no
// field Jaeger does not map except Vigil's "vigil" object (so
// Vigil writes no field that Elasticsearch had to map dynamically), and
// Vigil's documents load into Jaeger's own indices without a mapping error.
func checkMappingAgainstJaeger(t *testing.T, esURL, vigilPrefix string, day time.Time) {
	gen := jaegerTool(t, "jaeger-esmapping-generator", "VIGIL_JAEGER_ESMAPPING_GENERATOR")
	jp := fmt.Sprintf("jaeger-ref-%08x", rand.Uint32())
	t.Cleanup(func() { deleteJaegerIndices(t, esURL, jp) })
	date := day.UTC().Format("2006-01-02")
	for _, part := range []string{"jaeger-span", "jaeger-service"} {
		out, err := exec.Command(gen, "--mapping", part, "--es-version", "8", "--index-prefix", jp,
			"--shards", "1", "--replicas", "0").Output()
		if err != nil {
			t.Fatalf("%s --mapping %s: %v", gen, part, err)
		}
		var tpl map[string]any
		if err := json.Unmarshal(out, &tpl); err != nil {
			t.Fatalf("%s --mapping %s: %v: %s", gen, part, err, out)
		}
		if got, want := tpl["index_patterns"], jp+"-"+part+"-*"; got != want {
			t.Errorf("Jaeger's %s template: index_patterns %v; want %q, the names Vigil uses", part, got, want)
		}
		tpl["priority"] = 1 // above any catch-all template of priority 0
		if code, body := esDo(t, http.MethodPut, esURL+"/_index_template/"+jp+"-"+part, mustJSON(t, tpl)); code != http.StatusOK {
			t.Fatalf("PUT Jaeger's %s template: %d %s", part, code, body)
		}
		jIdx, vIdx := jp+"-"+part+"-"+date, vigilPrefix+"-"+part+"-"+date
		if code, body := esDo(t, http.MethodPut, esURL+"/"+jIdx, nil); code != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", jIdx, code, body)
		}
		jm, vm := indexMapping(t, esURL, jIdx), indexMapping(t, esURL, vIdx)

		if !reflect.DeepEqual(jm["dynamic_templates"], vm["dynamic_templates"]) {
			t.Errorf("%s dynamic_templates:\n got %s\nwant %s (Jaeger's)", vIdx, mustJSON(t, vm["dynamic_templates"]), mustJSON(t, jm["dynamic_templates"]))
		}
		jf, vf := map[string]string{}, map[string]string{}
		flattenMapping(t, jm, "", jf)
		flattenMapping(t, vm, "", vf)
		for _, path := range sortedKeys(jf) {
			if got, ok := vf[path]; !ok {
				t.Errorf("%s: field %s missing; Jaeger maps it as %s", vIdx, path, jf[path])
			} else if got != jf[path] {
				t.Errorf("%s: field %s mapped as %s; Jaeger maps it as %s", vIdx, path, got, jf[path])
			}
		}
		for _, path := range sortedKeys(vf) {
			if _, ok := jf[path]; !ok && path != "vigil" && path != "vigil.parentService" {
				t.Errorf("%s: field %s (%s) is not in Jaeger's mapping", vIdx, path, vf[path])
			}
		}

		// Vigil's documents, as they are, into Jaeger's own index (the
		// test distribution has no _reindex).
		code, body := esDo(t, http.MethodGet, esURL+"/"+vIdx+"/_search?size=1000", nil)
		var hits struct {
			Hits struct {
				Hits []struct {
					ID     string          `json:"_id"`
					Source json.RawMessage `json:"_source"`
				}
			}
		}
		if err := json.Unmarshal(body, &hits); code != http.StatusOK || err != nil || len(hits.Hits.Hits) == 0 {
			t.Fatalf("GET %s/_search: %d %v %.500s", vIdx, code, err, body)
		}
		var bulk bytes.Buffer
		for _, h := range hits.Hits.Hits {
			fmt.Fprintf(&bulk, "{\"create\":{\"_index\":%q,\"_id\":%q}}\n%s\n", jIdx, h.ID, h.Source)
		}
		code, body = esDoType(t, http.MethodPost, esURL+"/_bulk?refresh=true", bulk.Bytes(), "application/x-ndjson")
		var br struct {
			Errors bool
			Items  []json.RawMessage
		}
		if err := json.Unmarshal(body, &br); code != http.StatusOK || err != nil || br.Errors || len(br.Items) != len(hits.Hits.Hits) {
			t.Errorf("Vigil's %d documents of %s into Jaeger's %s: %d %v %.2000s", len(hits.Hits.Hits), vIdx, jIdx, code, err, body)
		}
	}
}

// indexMapping returns the "mappings" of one index.
func indexMapping(t *testing.T, esURL, index string) map[string]any {
	t.Helper()
	code, body := esDo(t, http.MethodGet, esURL+"/"+index+"/_mapping", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s/_mapping: %d %s", index, code, body)
	}
	var m map[string]struct{ Mappings map[string]any }
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s/_mapping: %v", index, err)
	}
	return m[index].Mappings
}

// flattenMapping records, for each field under m's properties, its
// definition without sub-fields: "tags.key" -> {"ignore_above":256,"type":"keyword"}.
func flattenMapping(t *testing.T, m map[string]any, prefix string, out map[string]string) {
	props, _ := m["properties"].(map[string]any)
	for name, v := range props {
		def, _ := v.(map[string]any)
		own := map[string]any{}
		for k, x := range def {
			if k != "properties" {
				own[k] = x
			}
		}
		out[prefix+name] = string(mustJSON(t, own))
		flattenMapping(t, def, prefix+name+".", out)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// deleteJaegerIndices removes the span and service indices and templates of
// an index prefix.
func deleteJaegerIndices(t *testing.T, esURL, prefix string) {
	p := prefix + "-jaeger-"
	esDo(t, http.MethodDelete, esURL+"/"+p+"span-*,"+p+"service-*,"+p+"dependencies-*?expand_wildcards=all", nil)
	for _, part := range []string{"span", "service", "dependencies"} {
		esDo(t, http.MethodDelete, esURL+"/_index_template/"+p+part, nil)
	}
}

// esDo sends one request to Elasticsearch; a transport error fails the
// test.
func esDo(t *testing.T, method, u string, body []byte) (int, []byte) {
	t.Helper()
	return esDoType(t, method, u, body, "application/json")
}

func esDoType(t *testing.T, method, u string, body []byte, contentType string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, strings.SplitN(u, "?", 2)[0], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
