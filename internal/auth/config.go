// Package auth authenticates Vigil's clients against the tenants and keys
// of --auth.config and carries the tenant on the request's context. Without
// a configuration Vigil is single-tenant: every request is tenant
// DefaultTenant and nothing is checked. See docs/security.md,
// "Authentication".
package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/internal/config"
)

// DefaultTenant is the tenant of every request when auth is off.
const DefaultTenant = "default"

// Scope is what a key may do.
type Scope uint8

const (
	// ScopeWrite sends data: every intake.
	ScopeWrite Scope = 1 << iota
	// ScopeRead queries: every query API.
	ScopeRead
	// ScopeAdmin changes state: issue status, /debug/pprof.
	ScopeAdmin
)

var scopeNames = map[string]Scope{"write": ScopeWrite, "read": ScopeRead, "admin": ScopeAdmin}

func (s Scope) String() string {
	var names []string
	for _, n := range []string{"write", "read", "admin"} {
		if s&scopeNames[n] != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// Limits are a tenant's limits, as written in the file. Zero means the
// limit is not set for the tenant. Vigil's limiters read them from
// Authenticator.Limits.
type Limits struct {
	// IngestionRate is the sustained rate of records (log lines, spans,
	// samples, profiles, dumps) a second; IngestionBurst the bucket size.
	IngestionRate  float64
	IngestionBurst int
	// MaxStreams bounds the active log streams, MaxSeries the active
	// metric series.
	MaxStreams int
	MaxSeries  int
	// MaxQueryRange bounds the time range of one query.
	MaxQueryRange time.Duration
	// Retention is how long the tenant's data is kept.
	Retention time.Duration
}

// TenantConfig is one tenant of the configuration.
type TenantConfig struct {
	ID     string
	Limits Limits
	// DumpsWebhookURL, when set, receives the tenant's new issues and
	// regressions instead of --dumps.webhook-url.
	DumpsWebhookURL string
}

// key is one accepted key: the SHA-256 of the key and what it grants.
type key struct {
	sum         [sha256.Size]byte
	tenant      *TenantConfig
	scopes      Scope
	environment string
	// project binds a Sentry DSN key to one project; "" accepts any.
	project string
	line    int
}

// Config is a parsed --auth.config.
type Config struct {
	Tenants map[string]*TenantConfig
	// TrustedProxies are the source addresses whose X-Scope-OrgID header
	// is believed without a key.
	TrustedProxies []netip.Prefix
	// ProxyScopes are what a trusted proxy's requests may do.
	ProxyScopes Scope

	keys []*key // API keys
	dsn  []*key // Sentry DSN public keys
}

var tenantID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// The fields each mapping of the file accepts.
var (
	topFields    = []string{"tenants", "trusted_proxies"}
	proxyFields  = []string{"cidrs", "scopes"}
	tenantFields = []string{"keys", "sentry_keys", "limits", "dumps_webhook_url"}
	keyFields    = []string{"sha256", "scopes", "environment", "name"}
	dsnFields    = []string{"key", "sha256", "project"}
	limitFields  = []string{"ingestion_rate", "ingestion_burst", "max_streams", "max_series", "max_query_range", "retention"}
)

// ParseConfig parses the configuration b read from file (named in errors,
// with the line and the field at fault).
func ParseConfig(file string, b []byte) (*Config, error) {
	p := parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c := &Config{Tenants: map[string]*TenantConfig{}, ProxyScopes: ScopeWrite | ScopeRead}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty: want a \"tenants:\" mapping", file)
	}
	top, err := p.mapping(doc.Content[0], "", topFields)
	if err != nil {
		return nil, err
	}
	if n := top["trusted_proxies"]; n != nil {
		if err := p.proxies(c, n); err != nil {
			return nil, err
		}
	}
	tn := top["tenants"]
	if tn == nil {
		return nil, p.errf(doc.Content[0], "tenants", "missing: want at least one tenant with keys")
	}
	if tn.Kind != yaml.MappingNode {
		return nil, p.errf(tn, "tenants", "want a mapping of tenant ids to tenants")
	}
	for i := 0; i+1 < len(tn.Content); i += 2 {
		id, body := tn.Content[i].Value, tn.Content[i+1]
		path := "tenants." + id
		if !tenantID.MatchString(id) {
			return nil, p.errf(tn.Content[i], path, "tenant id %q: want letters, digits, '_', '.' or '-', at most 128", id)
		}
		if c.Tenants[id] != nil {
			return nil, p.errf(tn.Content[i], path, "tenant %q is listed twice", id)
		}
		t, err := p.tenant(c, id, path, body)
		if err != nil {
			return nil, err
		}
		c.Tenants[id] = t
	}
	if len(c.Tenants) == 0 {
		return nil, p.errf(tn, "tenants", "empty: want at least one tenant with keys")
	}
	return c, nil
}

type parser struct{ file string }

func (p parser) errf(n *yaml.Node, path, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", p.file, n.Line, path, fmt.Sprintf(format, args...))
}

// mapping returns the fields of the mapping n, refusing any not in known.
func (p parser) mapping(n *yaml.Node, path string, known []string) (map[string]*yaml.Node, error) {
	where := path
	if where == "" {
		where = "top level"
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, where, "want a mapping with the fields %s", strings.Join(known, ", "))
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		field := strings.TrimPrefix(path+"."+k, ".")
		if !contains(known, k) {
			return nil, p.errf(n.Content[i], field, "unknown field; known: %s", strings.Join(known, ", "))
		}
		if m[k] != nil {
			return nil, p.errf(n.Content[i], field, "given twice")
		}
		m[k] = n.Content[i+1]
	}
	return m, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p parser) proxies(c *Config, n *yaml.Node) error {
	m, err := p.mapping(n, "trusted_proxies", proxyFields)
	if err != nil {
		return err
	}
	if cn := m["cidrs"]; cn != nil {
		if cn.Kind != yaml.SequenceNode {
			return p.errf(cn, "trusted_proxies.cidrs", "want a list of CIDRs such as 10.0.0.0/8")
		}
		for i, e := range cn.Content {
			pre, err := netip.ParsePrefix(e.Value)
			if err != nil {
				a, aerr := netip.ParseAddr(e.Value)
				if aerr != nil {
					return p.errf(e, fmt.Sprintf("trusted_proxies.cidrs[%d]", i), "%q is not a CIDR (10.0.0.0/8) or an address", e.Value)
				}
				pre = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, pre.Masked())
		}
	}
	if sn := m["scopes"]; sn != nil {
		s, err := p.scopes(sn, "trusted_proxies.scopes")
		if err != nil {
			return err
		}
		c.ProxyScopes = s
	}
	return nil
}

func (p parser) tenant(c *Config, id, path string, n *yaml.Node) (*TenantConfig, error) {
	t := &TenantConfig{ID: id}
	m, err := p.mapping(n, path, tenantFields)
	if err != nil {
		return nil, err
	}
	if ln := m["limits"]; ln != nil {
		if t.Limits, err = p.limits(ln, path+".limits"); err != nil {
			return nil, err
		}
	}
	if wn := m["dumps_webhook_url"]; wn != nil {
		u, err := url.Parse(wn.Value)
		if wn.Kind != yaml.ScalarNode || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, p.errf(wn, path+".dumps_webhook_url", "%q: want an http or https URL", wn.Value)
		}
		t.DumpsWebhookURL = wn.Value
	}
	if kn := m["keys"]; kn != nil {
		if kn.Kind != yaml.SequenceNode {
			return nil, p.errf(kn, path+".keys", "want a list of keys, each with sha256 and scopes")
		}
		for i, e := range kn.Content {
			k, err := p.key(t, fmt.Sprintf("%s.keys[%d]", path, i), e)
			if err != nil {
				return nil, err
			}
			if prev := findKey(c.keys, k.sum); prev != nil {
				return nil, p.errf(e, fmt.Sprintf("%s.keys[%d].sha256", path, i), "the same key is already given at line %d (tenant %q); each key belongs to one tenant", prev.line, prev.tenant.ID)
			}
			c.keys = append(c.keys, k)
		}
	}
	if sn := m["sentry_keys"]; sn != nil {
		if sn.Kind != yaml.SequenceNode {
			return nil, p.errf(sn, path+".sentry_keys", "want a list of DSN keys, each with key (or sha256) and optionally project")
		}
		for i, e := range sn.Content {
			k, err := p.dsnKey(t, fmt.Sprintf("%s.sentry_keys[%d]", path, i), e)
			if err != nil {
				return nil, err
			}
			if prev := findKey(c.dsn, k.sum); prev != nil {
				return nil, p.errf(e, fmt.Sprintf("%s.sentry_keys[%d]", path, i), "the same DSN key is already given at line %d (tenant %q)", prev.line, prev.tenant.ID)
			}
			c.dsn = append(c.dsn, k)
		}
	}
	return t, nil
}

func findKey(keys []*key, sum [sha256.Size]byte) *key {
	for _, k := range keys {
		if k.sum == sum {
			return k
		}
	}
	return nil
}

func (p parser) key(t *TenantConfig, path string, n *yaml.Node) (*key, error) {
	m, err := p.mapping(n, path, keyFields)
	if err != nil {
		return nil, err
	}
	k := &key{tenant: t, line: n.Line}
	sn := m["sha256"]
	if sn == nil {
		return nil, p.errf(n, path+".sha256", "missing: want the hex SHA-256 of the key (sha256sum, or `printf %%s KEY | sha256sum`)")
	}
	if k.sum, err = p.sum(sn, path+".sha256"); err != nil {
		return nil, err
	}
	sc := m["scopes"]
	if sc == nil {
		return nil, p.errf(n, path+".scopes", "missing: want a list of write, read, admin")
	}
	if k.scopes, err = p.scopes(sc, path+".scopes"); err != nil {
		return nil, err
	}
	if en := m["environment"]; en != nil {
		k.environment = en.Value
	}
	return k, nil
}

func (p parser) dsnKey(t *TenantConfig, path string, n *yaml.Node) (*key, error) {
	m, err := p.mapping(n, path, dsnFields)
	if err != nil {
		return nil, err
	}
	k := &key{tenant: t, scopes: ScopeWrite, line: n.Line}
	switch plain, hashed := m["key"], m["sha256"]; {
	case plain != nil && hashed != nil:
		return nil, p.errf(n, path, "give key or sha256, not both")
	case plain != nil:
		if plain.Value == "" || strings.ContainsAny(plain.Value, " /@:") {
			return nil, p.errf(plain, path+".key", "%q is not a DSN public key (the part before @ in the DSN)", plain.Value)
		}
		k.sum = sha256.Sum256([]byte(plain.Value))
	case hashed != nil:
		if k.sum, err = p.sum(hashed, path+".sha256"); err != nil {
			return nil, err
		}
	default:
		return nil, p.errf(n, path+".key", "missing: want the DSN's public key (key) or its hex SHA-256 (sha256)")
	}
	if pn := m["project"]; pn != nil {
		if _, err := strconv.ParseUint(pn.Value, 10, 64); err != nil || len(pn.Value) > 19 {
			return nil, p.errf(pn, path+".project", "%q is not a project id (the number that ends the DSN)", pn.Value)
		}
		k.project = pn.Value
	}
	return k, nil
}

func (p parser) sum(n *yaml.Node, path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	v := strings.TrimSpace(n.Value)
	if len(v) != 2*sha256.Size {
		return sum, p.errf(n, path, "want 64 hex digits (the SHA-256 of the key), got %d characters", len(v))
	}
	if _, err := hex.Decode(sum[:], []byte(v)); err != nil {
		return sum, p.errf(n, path, "not hex: %v", err)
	}
	if bytes.Equal(sum[:], make([]byte, sha256.Size)) {
		return sum, p.errf(n, path, "all zeros is not the hash of a key")
	}
	return sum, nil
}

func (p parser) scopes(n *yaml.Node, path string) (Scope, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return 0, p.errf(n, path, "want a non-empty list of write, read, admin")
	}
	var s Scope
	for i, e := range n.Content {
		v, ok := scopeNames[e.Value]
		if !ok {
			return 0, p.errf(e, fmt.Sprintf("%s[%d]", path, i), "unknown scope %q; want write, read or admin", e.Value)
		}
		s |= v
	}
	return s, nil
}

func (p parser) limits(n *yaml.Node, path string) (Limits, error) {
	var l Limits
	m, err := p.mapping(n, path, limitFields)
	if err != nil {
		return l, err
	}
	num := func(field string, dst *float64) error {
		v := m[field]
		if v == nil {
			return nil
		}
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil || f < 0 {
			return p.errf(v, path+"."+field, "%q: want a number ≥ 0", v.Value)
		}
		*dst = f
		return nil
	}
	integer := func(field string, dst *int) error {
		v := m[field]
		if v == nil {
			return nil
		}
		i, err := strconv.Atoi(v.Value)
		if err != nil || i < 0 {
			return p.errf(v, path+"."+field, "%q: want a whole number ≥ 0", v.Value)
		}
		*dst = i
		return nil
	}
	duration := func(field string, dst *time.Duration) error {
		v := m[field]
		if v == nil {
			return nil
		}
		var d config.Duration
		if err := d.Set(v.Value); err != nil || d < 0 {
			return p.errf(v, path+"."+field, "%q: want a duration such as 30d, 12h or 90m", v.Value)
		}
		*dst = time.Duration(d)
		return nil
	}
	return l, errors.Join(num("ingestion_rate", &l.IngestionRate), integer("ingestion_burst", &l.IngestionBurst),
		integer("max_streams", &l.MaxStreams), integer("max_series", &l.MaxSeries),
		duration("max_query_range", &l.MaxQueryRange), duration("retention", &l.Retention))
}
