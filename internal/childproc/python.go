package childproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PythonPath returns the PYTHONPATH under which python3 imports module:
// deploy/local/deps.sh installs the Python clients the tests drive (from
// PyPI, since the machine's python3 cannot import Debian's python3-*
// packages) into $VIGIL_CACHE_DIR/python (~/.cache/vigil/python). The
// error names the fix when the import fails.
func PythonPath(module string) (string, error) {
	dir := os.Getenv("VIGIL_CACHE_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "vigil")
	}
	path := filepath.Join(dir, "python")
	cmd := exec.Command("python3", "-c", "import "+module) // #nosec G204 -- the module names are constants of the tests that call this
	cmd.Env = append(os.Environ(), "PYTHONPATH="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("python3 cannot import %s from %s (%v: %s); run deploy/local/deps.sh", module, path, err, strings.TrimSpace(string(out)))
	}
	return path, nil
}
