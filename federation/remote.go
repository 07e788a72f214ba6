package federation

import (
	"errors"
	"time"

	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage/remote"
)

// remoteStorage sends what is appended to the remote_write endpoints of the
// configuration (Thanos, Mimir, VictoriaMetrics, another Prometheus), each
// through its own queue that tails the TSDB's write-ahead log (walDir is the
// TSDB's directory), so an outage of the remote store loses nothing the WAL
// still holds.
type remoteStorage = *remote.Storage

// remoteFlushDeadline is how long Close waits for the queues to send what
// they hold.
const remoteFlushDeadline = time.Minute

func newRemoteStorage(f *Federation, walDir string) remoteStorage {
	return remote.NewStorage(f.logger.With("component", "remote"), f.o.Registerer,
		f.db.StartTime, walDir, remoteFlushDeadline, scrapeManagerOf{f}, false)
}

// scrapeManagerOf hands the scrape manager to remote write, which reads
// the targets' metadata from it, once it exists.
type scrapeManagerOf struct{ f *Federation }

func (s scrapeManagerOf) Get() (*scrape.Manager, error) {
	if s.f.scrapes == nil {
		return nil, errors.New("the scrape manager is not ready")
	}
	return s.f.scrapes, nil
}
