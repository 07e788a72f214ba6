package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/vigilhq/vigil/"

// backends implement a contract another package defines: the embedded and
// Elasticsearch stores of each signal, the disk and Kafka queues.
var backends = []string{
	"internal/logstore",
	"internal/esstore",
	"internal/spanstore",
	"internal/esspanstore",
	"internal/dumpstore",
	"internal/esdumpstore",
	"internal/queue/diskqueue",
	"internal/queue/kafka",
}

// components are the top-level packages, each with its subpackages.
var components = []string{"collector", "ingester", "query", "federation", "profiler", "dumps", "sdk"}

// libraries are the parts of components that every package may use: the
// SDK's stability toolkit, which Vigil's own daemons apply too (DESIGN §5).
var libraries = []string{"sdk/resilience"}

// deps returns, for every package of the module, the module packages it
// depends on directly or not (test files excluded), from `go list -deps`.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	m := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], module)
		for _, d := range fields[1:] {
			if strings.HasPrefix(d, module) {
				m[pkg] = append(m[pkg], strings.TrimPrefix(d, module))
			}
		}
		if _, ok := m[pkg]; !ok {
			m[pkg] = nil
		}
	}
	if len(m) < 10 {
		t.Fatalf("go list found %d packages of the module; want the whole tree", len(m))
	}
	return m
}

// under reports whether pkg is root or below it.
func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

// owner returns the element of roots that pkg lies under, or "".
func owner(pkg string, roots []string) string {
	for _, r := range roots {
		if under(pkg, r) {
			return r
		}
	}
	return ""
}

func TestLayout(t *testing.T) {
	for pkg, ds := range deps(t) {
		b, c := owner(pkg, backends), owner(pkg, components)
		for _, d := range ds {
			if owner(d, libraries) != "" {
				continue
			}
			switch db, dc := owner(d, backends), owner(d, components); {
			case b != "" && db != "" && db != b:
				t.Errorf("backend %s depends on backend %s; move the shared vocabulary to the package that consumes both", pkg, d)
			case c != "" && db != "":
				t.Errorf("component %s depends on backend %s; hand it an interface from cmd/vigil instead", pkg, d)
			case c != "" && dc != "" && dc != c:
				t.Errorf("component %s depends on component %s; share through internal/ instead", pkg, d)
			case under(pkg, "internal") && dc != "":
				t.Errorf("%s depends on component %s; internal/ packages are the components' building blocks, never the other way", pkg, d)
			}
		}
	}
}

// TestLayoutCatches checks the rules against a known bad graph, so that a
// change to deps() that returned nothing would not pass silently.
func TestLayoutCatches(t *testing.T) {
	got := deps(t)
	for _, want := range []string{"collector", "ingester", "query", "internal/logstore", "internal/queue/kafka", "cmd/vigil"} {
		if _, ok := got[want]; !ok {
			t.Errorf("go list did not report %s", want)
		}
	}
	if !containsDep(got["cmd/vigil"], "collector") || !containsDep(got["cmd/vigil"], "internal/queue/kafka") {
		t.Errorf("cmd/vigil deps = %v; want it to wire collector and the Kafka queue", got["cmd/vigil"])
	}
}

func containsDep(ds []string, want string) bool {
	for _, d := range ds {
		if d == want {
			return true
		}
	}
	return false
}
