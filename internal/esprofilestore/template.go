package esprofilestore

type obj = map[string]any

// maxPairBytes is the longest "name=value" pair indexed: a name and a
// value of model.MaxProfileLabelLen each and the "=".
const maxPairBytes = 2*1024 + 1

// settings of a daily index. best_compression (DEFLATE rather than LZ4
// for stored fields) because the source of a document is mostly the
// base64 of a gzipped profile: DEFLATE takes back most of base64's third.
func settings(shards, replicas int) obj {
	return obj{"index.number_of_shards": shards, "index.number_of_replicas": replicas, "index.codec": "best_compression"}
}

// mapping maps a profile document (doc): strict, so that nothing but the
// fields below is ever indexed; the pprof bytes and what only a reader of
// one document needs are in the source alone.
func mapping() obj {
	kw := func(ignoreAbove int) obj { return obj{"type": "keyword", "ignore_above": ignoreAbove} }
	stored := obj{"type": "keyword", "index": false, "doc_values": false}
	return obj{
		"dynamic": "strict",
		"properties": obj{
			"id":                  kw(64),
			"type":                kw(64),
			"series":              kw(64), // hex id of type and labels: aggregated to list series
			"labels":              kw(maxPairBytes),
			"label_names":         kw(1024),
			"signature":           kw(4096), // the sample and period types: aggregated by ProfileTypes
			"time":                obj{"type": "long"},
			"@timestamp":          obj{"type": "date", "format": "epoch_millis"},
			"duration":            obj{"type": "long", "index": false},
			"label_set":           obj{"type": "object", "enabled": false},
			"sample_types":        obj{"type": "object", "enabled": false},
			"period_type":         obj{"type": "object", "enabled": false},
			"default_sample_type": stored,
			"totals":              obj{"type": "long", "index": false, "doc_values": false},
			"pprof":               obj{"type": "binary"}, // never indexed; no doc values
			"size":                obj{"type": "long", "index": false},
		},
	}
}
