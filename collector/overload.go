package collector

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// OverloadOptions configures the receivers' overload protection: a guard
// that lets MaxInflight requests publish to the queue at once and sheds
// the others by grade (4 first, 1 last), and a fair budget per service.
// The zero value protects nothing: every request is served as it comes.
type OverloadOptions struct {
	// MaxInflight is how many requests publish to the queue at once; 0
	// disables the guard. MaxQueue bounds the requests waiting for a slot
	// (0: 4×MaxInflight), QueueBudget how long one may wait (0: 250ms).
	MaxInflight int
	MaxQueue    int
	QueueBudget time.Duration
	// ServiceRate is each service's budget in records (log records,
	// spans, events) per second; 0 disables the budgets. ServiceBurst is
	// how many a service may send at once above it (0: one second's); a
	// request with more records than that is admitted on a full bucket
	// and empties it.
	ServiceRate  float64
	ServiceBurst int
}

// maxBudgetedServices bounds the per-service budgets kept in memory; the
// services beyond share one budget, counted under the service "_other".
const maxBudgetedServices = 4096

// otherService is the label of the services beyond maxBudgetedServices.
const otherService = "_other"

// admission is the overload protection shared by every receiver of a
// collector: they all publish to the same queues from the same process.
type admission struct {
	guard *resilience.Guard // nil: no guard
	rate  float64
	burst int

	mu       sync.Mutex
	services map[string]*resilience.Limiter

	shed *prometheus.CounterVec // signal, service, grade, reason
}

// Reasons of vigil_collector_shed_records_total beside the guard's
// shed, waited and deadline.
const reasonBudget = "budget"

func newAdmission(o OverloadOptions, reg prometheus.Registerer) (*admission, error) {
	a := &admission{rate: o.ServiceRate, burst: o.ServiceBurst, services: map[string]*resilience.Limiter{},
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "shed_records_total",
			Help: "Records (log records, spans, events) refused with 429 by overload protection, by signal, service, grade and reason: budget (the service's fair budget), shed, waited or deadline (the guard).",
		}, []string{"signal", "service", "grade", "reason"}),
	}
	if o.ServiceRate < 0 || math.IsNaN(o.ServiceRate) {
		return nil, fmt.Errorf("--collector.limits.service-rate %v: want records per second, 0 for no budget", o.ServiceRate)
	}
	if o.ServiceBurst < 0 {
		return nil, fmt.Errorf("--collector.limits.service-burst %d: want records, 0 for one second's budget", o.ServiceBurst)
	}
	if o.MaxInflight < 0 || o.MaxQueue < 0 || o.QueueBudget < 0 {
		return nil, fmt.Errorf("--collector.overload.*: max-inflight %d, max-queue %d and queue-budget %v must not be negative", o.MaxInflight, o.MaxQueue, o.QueueBudget)
	}
	if o.MaxInflight > 0 {
		gc := resilience.DefaultGuardConfig("collector")
		gc.MaxInflight, gc.MaxQueue, gc.Registerer = o.MaxInflight, o.MaxQueue, reg
		if o.QueueBudget > 0 {
			gc.QueueBudget = o.QueueBudget
		}
		g, err := resilience.NewGuard(gc)
		if err != nil {
			return nil, err
		}
		a.guard = g
	}
	if reg != nil {
		if err := reg.Register(a.shed); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// serviceCount is how many records of one service a request carries.
type serviceCount struct {
	service string
	n       int
}

// overloaded is a request refused by overload protection: 429 with
// Retry-After, the message naming the limit.
type overloaded struct {
	msg        string
	retryAfter time.Duration
}

// retryAfterSeconds is the Retry-After header's value, at least 1.
func (o *overloaded) retryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(o.retryAfter.Seconds()))))
}

// origin is what overload protection knows of a request before reading
// its records: its grade from X-Vigil-Grade (0: none), its arrival, and
// the response's header, where a refusal sets Retry-After (nil: gRPC).
type origin struct {
	grade   int
	arrived time.Time
	header  http.Header
}

// httpOrigin is the origin of an HTTP request answered through w.
func httpOrigin(w http.ResponseWriter, r *http.Request) *origin {
	return &origin{grade: requestGrade(r, 0, 0), arrived: time.Now(), header: w.Header()}
}

// admit decides about a request from o whose records are counts, best
// their best grade: it checks each service's budget, then waits for a
// slot of the guard in the lane of the request's grade. On success the
// caller publishes and then calls release; on refusal every record of
// the request is counted as shed, nothing of it is queued, and
// Retry-After is set on o's header. A nil o (UDP, which cannot be told
// to retry) is not subject to admission.
func (a *admission) admit(ctx context.Context, signal string, o *origin, best int, counts []serviceCount) (release func(), refused *overloaded) {
	if a == nil || o == nil {
		return func() {}, nil
	}
	release, refused = a.decide(ctx, signal, o, requestGrade(nil, o.grade, best), counts)
	if refused != nil && o.header != nil {
		o.header.Set("Retry-After", refused.retryAfterSeconds())
	}
	return release, refused
}

func (a *admission) decide(ctx context.Context, signal string, o *origin, grade int, counts []serviceCount) (release func(), refused *overloaded) {
	gl := gradeLabel(grade)
	arrived := o.arrived
	if a.rate > 0 {
		for _, c := range counts {
			// a request larger than the burst costs a full bucket
			if l, label := a.entry(c.service); !l.AllowN(min(c.n, a.burstOf())) {
				a.count(signal, gl, reasonBudget, counts)
				wait := time.Duration(float64(min(c.n, a.burstOf())) / a.rate * float64(time.Second))
				return nil, &overloaded{retryAfter: wait,
					msg: fmt.Sprintf("service %q is over its budget of %g records per second (burst %d, --collector.limits.service-rate, --collector.limits.service-burst); %d records refused, retry after the Retry-After delay", label, a.rate, a.burstOf(), total(counts))}
			}
		}
	}
	if a.guard == nil {
		return func() {}, nil
	}
	started, err := a.guard.Acquire(ctx, grade, arrived)
	if err != nil {
		reason := resilience.ReasonShed
		if re, ok := err.(*resilience.RejectError); ok {
			reason = re.Reason
		}
		a.count(signal, gl, reason, counts)
		return nil, &overloaded{retryAfter: time.Second,
			msg: fmt.Sprintf("the collector is overloaded (--collector.overload.max-inflight, --collector.overload.max-queue, --collector.overload.queue-budget): %v; retry after the Retry-After delay", err)}
	}
	return func() { a.guard.Release(started) }, nil
}

func (a *admission) burstOf() int {
	if a.burst > 0 {
		return a.burst
	}
	return max(1, int(math.Ceil(a.rate)))
}

// entry returns service's budget (nil without budgets) and the label it
// is counted under: services beyond maxBudgetedServices share one.
func (a *admission) entry(service string) (*resilience.Limiter, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.services[service]
	if !ok && len(a.services) >= maxBudgetedServices {
		service = otherService
		l, ok = a.services[service]
	}
	if !ok {
		if a.rate > 0 {
			var err error
			if l, err = resilience.NewLimiter(resilience.LimiterConfig{Rate: a.rate, Burst: a.burstOf()}); err != nil {
				panic(err) // rate > 0 is checked by newAdmission
			}
		}
		a.services[service] = l
	}
	return l, service
}

// count adds the records of a refused request to the shed counter.
func (a *admission) count(signal, grade, reason string, counts []serviceCount) {
	for _, c := range counts {
		_, label := a.entry(c.service)
		a.shed.WithLabelValues(signal, label, grade, reason).Add(float64(c.n))
	}
}

func total(counts []serviceCount) int {
	n := 0
	for _, c := range counts {
		n += c.n
	}
	return n
}

func gradeLabel(g int) string {
	if g < 1 || g > 4 {
		return "4"
	}
	return strconv.Itoa(g)
}

// requestGrade is the grade of a request: X-Vigil-Grade when r has one
// (1…4), else hdr when set, else the best grade among its records (best,
// 0 when none says), else 0 (grade 4 to the guard, the first shed).
func requestGrade(r *http.Request, hdr, best int) int {
	if r != nil {
		if v, err := strconv.Atoi(r.Header.Get(resilience.GradeHeader)); err == nil && v >= 1 && v <= 4 {
			return v
		}
	}
	if hdr >= 1 && hdr <= 4 {
		return hdr
	}
	if best >= 1 && best <= 4 {
		return best
	}
	return 0
}

// withGrade returns ctx carrying the grade of a request from o whose
// records' best grade is best, as admission knows it (requestGrade), for
// the queue: the spool forwards a backlog grade 1 first. An unknown grade
// stays unknown (grade 4 to the spool).
func withGrade(ctx context.Context, o *origin, best int) context.Context {
	hdr := 0
	if o != nil {
		hdr = o.grade
	}
	if g := requestGrade(nil, hdr, best); g != 0 {
		return queue.WithGrade(ctx, g)
	}
	return ctx
}

// better returns the better (lower, non-zero) of two grades.
func better(best, g int) int {
	if g >= 1 && g <= 4 && (best == 0 || g < best) {
		return g
	}
	return best
}

// countByService returns the records of each service among n records,
// in order of first appearance, and the best grade among them.
func countByService(n int, at func(i int) (service string, grade int)) ([]serviceCount, int) {
	var counts []serviceCount
	var idx map[string]int
	best := 0
	for i := 0; i < n; i++ {
		s, g := at(i)
		best = better(best, g)
		if k := len(counts); k > 0 && counts[k-1].service == s {
			counts[k-1].n++
			continue
		}
		if idx == nil {
			idx = make(map[string]int, 4)
		}
		if j, ok := idx[s]; ok {
			counts[j].n++
			continue
		}
		idx[s] = len(counts)
		counts = append(counts, serviceCount{service: s, n: 1})
	}
	return counts, best
}
