package profiler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
)

// Pyroscope's connect API push.v1.PusherService/Push, as Grafana Alloy's
// pyroscope.write and the Pyroscope SDKs of other languages call it: series
// of labels (__name__ the profile type, service_name the service) each with
// raw pprof samples. Connect, gRPC and gRPC-Web, protobuf or JSON, are
// served by connect-go's handler.

// pushedNames maps Pyroscope's __name__ to a profile type.
var pushedNames = map[string]string{
	"process_cpu": model.ProfileCPU, "cpu": model.ProfileCPU,
	"memory":    model.ProfileHeap,
	"goroutine": model.ProfileGoroutine, "goroutines": model.ProfileGoroutine,
	"mutex": model.ProfileMutex, "block": model.ProfileBlock,
}

// registerPush registers the Push procedure on mux.
func (p *Profiler) registerPush(mux *http.ServeMux) {
	path, h := pushv1connect.NewPusherServiceHandler(pusher{p}, connect.WithReadMaxBytes(int(p.opts.MaxBodyBytes)))
	mux.Handle(path, h)
}

type pusher struct{ p *Profiler }

func (s pusher) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	p := s.p
	profiles, err := pushProfiles(req.Msg, p.opts.MaxDecodedBytes, p.opts.now().UnixNano())
	if err != nil {
		p.m.push.WithLabelValues("bad_request").Inc()
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	recs := make([]queue.Record, len(profiles))
	for i := range profiles {
		if recs[i], err = p.record(&profiles[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = queue.PublishBatch(ctx, p.q, recs)
	}
	if err != nil {
		switch {
		case errors.Is(err, queue.ErrFull):
			p.m.push.WithLabelValues("queue_full").Inc()
			return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("the profiles queue is full, retry later"))
		case errors.Is(err, queue.ErrTooLarge):
			p.m.push.WithLabelValues("too_large").Inc()
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		p.m.push.WithLabelValues("error").Inc()
		p.log.Warn("cannot publish pushed profiles", "err", err)
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("cannot queue the profiles: %w", err))
	}
	p.m.push.WithLabelValues("accepted").Inc()
	for i := range profiles {
		p.m.profiles.WithLabelValues("push", profiles[i].Type).Inc()
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// pushProfiles turns a PushRequest into profiles, or names the first series
// or sample that cannot be one. A profile's time is its pprof's time_nanos
// (now when it has none), its duration the pprof's duration_nanos.
func pushProfiles(req *pushv1.PushRequest, maxDecoded, now int64) ([]model.Profile, error) {
	var out []model.Profile
	for i, s := range req.GetSeries() {
		labels := map[string]string{}
		name := ""
		for _, l := range s.GetLabels() {
			k, v := l.GetName(), l.GetValue()
			switch {
			case k == "__name__":
				name = v
				continue
			case k == "service_name":
				k = model.LabelService
			case strings.HasPrefix(k, "__"):
				continue
			}
			if !validLabelName(k) || len(v) > model.MaxProfileLabelLen {
				return nil, fmt.Errorf("series %d: label %.80q: want a name of [a-zA-Z0-9_.] and a value of at most %d bytes", i, k, model.MaxProfileLabelLen)
			}
			if v != "" {
				labels[k] = v
			}
		}
		if labels[model.LabelService] == "" {
			return nil, fmt.Errorf("series %d: no service_name label", i)
		}
		if len(labels) > model.MaxProfileLabels {
			return nil, fmt.Errorf("series %d: %d labels, more than the limit of %d", i, len(labels), model.MaxProfileLabels)
		}
		for j, sm := range s.GetSamples() {
			raw := sm.GetRawProfile()
			if len(raw) == 0 {
				return nil, fmt.Errorf("series %d, sample %d: no raw_profile", i, j)
			}
			pp, err := decodePprof(raw, maxDecoded)
			if err != nil {
				return nil, fmt.Errorf("series %d, sample %d: raw_profile: %v", i, j, err)
			}
			typ := pushedNames[name]
			if typ == "" {
				if model.ValidProfileType(name) {
					typ = name
				} else {
					typ, _ = pushedType("", nil, pp)
				}
			}
			t, d := pp.TimeNanos, pp.DurationNanos
			if t <= 0 {
				t = now
			}
			if d < 0 {
				d = 0
			}
			pr := model.NewProfile(typ, labels, t, d, raw)
			if err := pr.Validate(); err != nil {
				return nil, fmt.Errorf("series %d, sample %d: %v", i, j, err)
			}
			out = append(out, pr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no profile: the request has no series with samples")
	}
	return out, nil
}
