package kafka

import (
	"bytes"

	"github.com/IBM/sarama"

	"github.com/vigilhq/vigil/internal/auth"
)

// HeaderTenant is the header that carries the tenant of a message's batch
// (queue.Message.Tenant): the tenant id, as is. Producer writes it on
// every message, also for the default tenant; a message without it
// (written by an earlier release, or by another producer) is the default
// tenant's. A message whose header is not a tenant id is dead-lettered by
// the Consumer, never returned by Fetch (docs/format/kafka.md).
const HeaderTenant = "vigil.tenant"

// tenantHeaders returns the headers of a message of tenant.
func tenantHeaders(tenant string) []sarama.RecordHeader {
	return []sarama.RecordHeader{{Key: []byte(HeaderTenant), Value: []byte(tenant)}}
}

// rawTenant returns the value of the vigil.tenant header of headers; ok
// is false when there is none. Several headers of different values make
// the message's tenant ambiguous: rawTenant then returns them joined by
// commas, which is not a tenant id.
func rawTenant(headers []*sarama.RecordHeader) (value []byte, ok bool) {
	for _, h := range headers {
		if h == nil || !bytes.Equal(h.Key, []byte(HeaderTenant)) {
			continue
		}
		switch {
		case !ok:
			value, ok = h.Value, true
		case !bytes.Equal(h.Value, value):
			value = bytes.Join([][]byte{value, h.Value}, []byte(","))
		}
	}
	return value, ok
}

// messageTenant returns the tenant of a consumed message: its vigil.tenant
// header, or auth.DefaultTenant when it has none. ok is false when the
// header is not a tenant id (or there are several that disagree).
func messageTenant(headers []*sarama.RecordHeader) (tenant string, ok bool) {
	v, found := rawTenant(headers)
	if !found {
		return auth.DefaultTenant, true
	}
	tenant = string(v)
	return tenant, auth.ValidTenant(tenant)
}
