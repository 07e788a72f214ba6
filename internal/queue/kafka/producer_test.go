package kafka

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/vigilhq/vigil/internal/queue"
)

// publishBounded runs Publish and fails the test if it has not returned
// long after its deadline: the point is that it returns at all.
func publishBounded(t *testing.T, p *Producer, ctx context.Context, value []byte) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Publish(ctx, "svc", value) }()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("Publish has not returned 60s after its deadline")
		return nil
	}
}

func TestPublishUnreachable(t *testing.T) {
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"} // nothing listens on port 1
	opts.PublishTimeout = time.Second
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatalf("NewProducer must not need the brokers: %v", err)
	}
	defer mustClose(t, p)
	for range 2 { // the second call starts a new connection attempt
		err := publishBounded(t, p, context.Background(), []byte("batch"))
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("Publish to an unreachable broker: %v; want an error naming the broker", err)
		}
	}
}

// TestPublishSilentBroker covers a broker that accepts connections and never
// answers: Publish returns at its context's deadline while sarama still waits.
func TestPublishSilentBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	opts := DefaultOptions()
	opts.Brokers = []string{ln.Addr().String()}
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = publishBounded(t, p, ctx, []byte("batch"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish to a silent broker: %v; want an error wrapping %v", err, context.DeadlineExceeded)
	}
	// Hang up so that sarama's pending connection attempt ends.
	ln.Close()
	<-acceptDone
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	mustClose(t, p)
	if err := p.Publish(context.Background(), "svc", []byte("x")); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Publish after Close: %v; want %v", err, queue.ErrClosed)
	}
}

func TestPublishTooLargeWithoutKafka(t *testing.T) {
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	opts.MaxMessageBytes = 4096
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, p)
	err = p.Publish(context.Background(), "svc", make([]byte, 4097))
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Publish of 4100 bytes with MaxMessageBytes 4096: %v; want %v", err, queue.ErrTooLarge)
	}
	// One record too large fails the batch at once, before any is sent
	// (there is no Kafka to send to).
	err = p.PublishBatch(context.Background(), []queue.Record{{Key: "a", Value: []byte("small")}, {Key: "b", Value: make([]byte, 4096)}})
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("PublishBatch with a record of 4097 bytes: %v; want %v", err, queue.ErrTooLarge)
	}
	// What MaxMessageBytes reports, sarama sends: its record framing fits.
	if got := queue.MaxMessageBytes(p); got != 4096-recordOverhead-tenantHeaderOverhead || got <= 0 {
		t.Errorf("MaxMessageBytes: got %d; want 4096 less sarama's record overhead and the tenant header", got)
	}
}

// TestSCRAMClient runs the sarama adapter against xdg-go/scram's server side.
func TestSCRAMClient(t *testing.T) {
	for _, tt := range []struct {
		name string
		hash scram.HashGeneratorFcn
	}{{"SHA-256", sha256Hash}, {"SHA-512", sha512Hash}} {
		t.Run(tt.name, func(t *testing.T) {
			creds, err := tt.hash.NewClient("vigil", "s3cret", "")
			if err != nil {
				t.Fatal(err)
			}
			//lint:ignore SA1019 fixed test factors, which cannot make it panic
			stored := creds.GetStoredCredentials(scram.KeyFactors{Salt: "salty-salt", Iters: 4096})
			srv, err := tt.hash.NewServer(func(user string) (scram.StoredCredentials, error) {
				if user != "vigil" {
					return scram.StoredCredentials{}, errors.New("unknown user")
				}
				return stored, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			f := func(password string, wantOK bool) {
				t.Helper()
				client := newSCRAMClient(tt.hash)()
				if err := client.Begin("vigil", password, ""); err != nil {
					t.Fatal(err)
				}
				conv := srv.NewConversation()
				challenge := ""
				var cerr, serr error
				for !client.Done() && cerr == nil && serr == nil {
					var resp string
					resp, cerr = client.Step(challenge)
					if cerr == nil && !client.Done() {
						challenge, serr = conv.Step(resp)
					}
				}
				ok := cerr == nil && serr == nil && conv.Valid()
				if ok != wantOK {
					t.Errorf("password %q: authenticated %v (client %v, server %v); want %v", password, ok, cerr, serr, wantOK)
				}
			}
			f("s3cret", true)
			f("wrong", false)
		})
	}
}
