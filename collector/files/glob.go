package files

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// glob is filepath.Glob, plus "**" as a whole path segment matching any
// number of directories. Such a pattern walks the tree below its longest
// prefix without wildcards.
func glob(pattern string) ([]string, error) {
	if !strings.Contains(pattern, "**") {
		return filepath.Glob(pattern)
	}
	pattern = filepath.Clean(pattern)
	segs := strings.Split(pattern, string(filepath.Separator))
	i := 0
	for i < len(segs) && !hasMeta(segs[i]) {
		i++
	}
	root := strings.Join(segs[:i], string(filepath.Separator))
	switch {
	case root == "" && filepath.IsAbs(pattern):
		root = string(filepath.Separator)
	case root == "":
		root = "."
	}
	rest := segs[i:]
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // unreadable directories are skipped, not fatal
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil
		}
		if matchSegments(rest, strings.Split(rel, string(filepath.Separator))) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// matchSegments matches path segments against pattern segments, where "**"
// matches zero or more segments and others follow filepath.Match.
func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := filepath.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
