// Package config resolves Vigil's configuration from three sources, in order
// of precedence: command-line flags (--kafka.brokers), environment variables
// (VIGIL_KAFKA_BROKERS) and an optional YAML file (--config) whose keys are
// the flag names, either dotted (`kafka.brokers: ...`) or nested
// (`kafka: {brokers: ...}`).
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigFlag is the name of the flag that points at the YAML file.
const ConfigFlag = "config"

// NewFlagSet returns a flag set for a subcommand with the --config flag
// declared and a usage text that lists every key with its environment
// variable.
func NewFlagSet(cmd, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.String(ConfigFlag, "", "path of an optional YAML configuration file whose keys are the flag names")
	fs.Usage = func() { PrintUsage(fs.Output(), fs, cmd, summary) }
	return fs
}

// EnvName returns the environment variable for a flag name:
// "collector.spool.max-bytes" → "VIGIL_COLLECTOR_SPOOL_MAX_BYTES".
func EnvName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "VIGIL_" + strings.ToUpper(r.Replace(flagName))
}

// Parse parses args, then fills every flag not given on the command line from
// its environment variable and then from the YAML file, if any. Unknown YAML
// keys and invalid values are errors that name the key and the source.
func Parse(fs *flag.FlagSet, args []string) error {
	return parse(fs, args, os.LookupEnv)
}

func parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; every setting is a flag, see --help", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		if v, ok := lookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", EnvName(f.Name), v, e)
				return
			}
			set[f.Name] = true
		}
	})
	if err != nil {
		return err
	}

	path := fs.Lookup(ConfigFlag).Value.String()
	if path == "" {
		return nil
	}
	values, err := readYAML(path)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || k == ConfigFlag {
			return fmt.Errorf("config file %s: unknown key %q; run with --help for the list of keys", path, k)
		}
		if set[k] {
			continue
		}
		if e := fs.Set(k, values[k]); e != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, k, e)
		}
	}
	return nil
}

// readYAML reads a YAML file and flattens it into dotted keys. Sequences
// become comma-separated values.
func readYAML(path string) (map[string]string, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator's own file, named by a flag or in the config
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	if err := flatten("", root, out); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return out, nil
}

func flatten(prefix string, v any, out map[string]string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if err := flatten(key, child, out); err != nil {
				return err
			}
		}
	case []any:
		parts := make([]string, 0, len(x))
		for i, item := range x {
			switch item.(type) {
			case map[string]any, []any:
				return fmt.Errorf("key %q: item %d: want a scalar", prefix, i)
			}
			parts = append(parts, fmt.Sprint(item))
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
		out[prefix] = ""
	default:
		out[prefix] = fmt.Sprint(x)
	}
	return nil
}

// PrintUsage writes the help text of a subcommand: every key with its
// default, its environment variable and its description.
func PrintUsage(w io.Writer, fs *flag.FlagSet, cmd, summary string) {
	fmt.Fprintf(w, "Usage: vigil %s [flags]\n\n%s\n\n", cmd, summary)
	fmt.Fprintf(w, "Every flag may also be set by its environment variable or, under the same\nname, in the YAML file given by --config (flags win over environment, which\nwins over the file).\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%s (default %s, env %s)\n      %s\n", f.Name, def, EnvName(f.Name), f.Usage)
	})
}

// StringList is a flag value holding a list, given comma-separated or by
// repeating the flag.
type StringList []string

func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set appends the comma-separated items of v. The first Set after the
// default replaces the default.
func (l *StringList) Set(v string) error {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	*l = append(*l, out...)
	return nil
}
