package main

import (
	"flag"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/esdumpstore"
	"github.com/vigilhq/vigil/internal/esprofilestore"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/esstore"
)

// Flags of Elasticsearch as the store of the distributed mode (the Kafka
// queue's are in internal/queue/kafka). Setting --es.urls switches a
// daemon from the embedded stores to it.

type esFlags struct {
	urls        config.StringList
	user        *string
	password    *string
	apiKey      *string
	passwordF   *string
	apiKeyF     *string
	caFile      *string
	certFile    *string
	keyFile     *string
	insecure    *bool
	indexPrefix *string
	jaegerIdx   *string
	dumpsIdx    *string
	profilesIdx *string
	shards      *int
	replicas    *int
	refresh     *time.Duration
	// The breaker and dynamic timeout of the stores' bulk writes.
	timeoutFloor, timeoutCeiling, openFor *time.Duration
}

func addESFlags(fs *flag.FlagSet) *esFlags {
	d := esstore.DefaultOptions()
	f := &esFlags{
		user:        fs.String("es.username", "", "Elasticsearch basic-auth user"),
		password:    fs.String("es.password", "", "Elasticsearch basic-auth password (prefer the environment variable)"),
		apiKey:      fs.String("es.api-key", "", "Elasticsearch API key (base64 id:key); wins over basic auth"),
		passwordF:   fs.String("es.password-file", "", "file holding the basic-auth password, used when --es.password is empty"),
		apiKeyF:     fs.String("es.api-key-file", "", "file holding the API key, used when --es.api-key is empty"),
		caFile:      fs.String("es.tls.ca-file", "", "PEM file of certificate authorities for https URLs"),
		certFile:    fs.String("es.tls.cert-file", "", "PEM client certificate for clusters that require one"),
		keyFile:     fs.String("es.tls.key-file", "", "PEM private key of --es.tls.cert-file"),
		insecure:    fs.Bool("es.tls.insecure-skip-verify", false, "do not verify Elasticsearch's certificate (tests only)"),
		indexPrefix: fs.String("es.index-prefix", d.IndexPrefix, "prefix of the daily log indices, the index template and the ILM policy"),
		jaegerIdx:   fs.String("es.jaeger.index-prefix", "", "prefix of the span indices, as Jaeger's --es.index-prefix: <prefix>-jaeger-span-YYYY-MM-DD; empty gives jaeger-span-YYYY-MM-DD"),
		dumpsIdx:    fs.String("es.dumps.index-prefix", "", "prefix of the dump indices: <prefix>-vigil-dumps-YYYY.MM.DD and <prefix>-vigil-dump-issues; empty gives vigil-dumps-YYYY.MM.DD and vigil-dump-issues"),
		profilesIdx: fs.String("es.profiles.index-prefix", "", "prefix of the profile indices: <prefix>-vigil-profiles-YYYY.MM.DD; empty gives vigil-profiles-YYYY.MM.DD"),
		shards:      fs.Int("es.shards", d.Shards, "primary shards of each daily index"),
		replicas:    fs.Int("es.replicas", d.Replicas, "replicas of each daily index"),
		refresh:     fs.Duration("es.refresh-interval", d.RefreshInterval, "refresh interval of each daily index; 0 keeps Elasticsearch's default (1s)"),
	}
	f.timeoutFloor = fs.Duration("es.write.timeout-floor", es.DefaultTimeoutFloor, "floor of the dynamic timeout of one bulk request (an EMA of their latency)")
	f.timeoutCeiling = fs.Duration("es.write.timeout-ceiling", es.DefaultTimeoutCeiling, "hard ceiling of the dynamic timeout of one bulk request")
	f.openFor = fs.Duration("es.write.breaker-open-for", es.DefaultBreakerOpenFor, "how long bulk writes fail fast after the cluster failed 5 in a row, before a probe")
	fs.Var(&f.urls, "es.urls", "Elasticsearch URLs, comma-separated; set to use Elasticsearch instead of the embedded store")
	return f
}

func (f *esFlags) enabled() bool { return f != nil && len(f.urls) > 0 }

// client returns the connection settings both stores share.
func (f *esFlags) client() es.ClientOptions {
	return es.ClientOptions{URLs: f.urls, Username: *f.user, Password: *f.password, APIKey: *f.apiKey,
		PasswordFile: *f.passwordF, APIKeyFile: *f.apiKeyF,
		TLS:   es.TLSOptions{CAFile: *f.caFile, CertFile: *f.certFile, KeyFile: *f.keyFile, InsecureSkipVerify: *f.insecure},
		Write: es.WriteResilience{TimeoutFloor: *f.timeoutFloor, TimeoutCeiling: *f.timeoutCeiling, BreakerOpenFor: *f.openFor}}
}

func (f *esFlags) options(tenant string, retention time.Duration) esstore.Options {
	o := esstore.DefaultOptions()
	o.ClientOptions = f.client()
	o.IndexPrefix = tenantIndexPrefix(tenant) + *f.indexPrefix
	o.Shards, o.Replicas = *f.shards, *f.replicas
	o.RefreshInterval = *f.refresh
	o.Retention = retention
	return o
}

// spanOptions returns the options of the span store in Jaeger's layout.
func (f *esFlags) spanOptions(tenant string, retention time.Duration) esspanstore.Options {
	o := esspanstore.DefaultOptions()
	o.ClientOptions = f.client()
	o.IndexPrefix = tenantIndexPrefix(tenant) + *f.jaegerIdx
	o.Shards, o.Replicas = *f.shards, *f.replicas
	o.Retention = retention
	return o
}

// dumpOptions returns the options of the dump store: daily event indices
// and one issue index.
func (f *esFlags) dumpOptions(tenant string, retention time.Duration) esdumpstore.Options {
	o := esdumpstore.DefaultOptions()
	o.ClientOptions = f.client()
	o.IndexPrefix = tenantIndexPrefix(tenant) + *f.dumpsIdx
	o.Shards, o.Replicas = *f.shards, *f.replicas
	o.Retention = retention
	return o
}

// profileOptions returns the options of the profile store: daily indices
// of one document per profile.
func (f *esFlags) profileOptions(tenant string, retention time.Duration) esprofilestore.Options {
	o := esprofilestore.DefaultOptions()
	o.ClientOptions = f.client()
	o.IndexPrefix = tenantIndexPrefix(tenant) + *f.profilesIdx
	o.Shards, o.Replicas = *f.shards, *f.replicas
	o.Retention = retention
	return o
}
