package otlpenc

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/mapping"
)

// bodies is an otlptrace.Client that keeps every request it marshals, as
// otlptracehttp's client marshals them; it is safe for concurrent use.
type bodies struct {
	mu  sync.Mutex
	got [][]byte
}

func (*bodies) Start(context.Context) error { return nil }
func (*bodies) Stop(context.Context) error  { return nil }
func (c *bodies) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	c.mu.Lock()
	c.got = append(c.got, b)
	c.mu.Unlock()
	return err
}

// TestExportersConcurrently exports batches of different shapes from
// several goroutines through two exporters, which share their idle
// encoders: every request must be the SDK's, whatever encoder it got.
func TestExportersConcurrently(t *testing.T) {
	all := mappedBatch(t)
	batches := [][]sdktrace.ReadOnlySpan{all, all[:1], all[3:20], all[len(all)/2:]}
	want := make([][]byte, len(batches))
	for i, b := range batches {
		c := &requestClient{}
		exp, err := otlptrace.New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.ExportSpans(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(sortedResourceSpans(t, decodeRequest(t, c.body))) != 1 {
			t.Fatal("the batches must have one resource, for a byte comparison of whole requests")
		}
		want[i] = c.body
	}
	clients := []*bodies{{}, {}}
	exps := []*Exporter{NewExporter(clients[0]), NewExporter(clients[1])}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				b := (g + i) % len(batches)
				if err := exps[g%2].ExportSpans(context.Background(), batches[b]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, c := range clients {
		for _, got := range c.got {
			found := false
			for _, w := range want {
				found = found || bytes.Equal(got, w)
			}
			if !found {
				t.Fatalf("a concurrent export sent a request the SDK would not: %v", decodeRequest(t, got))
			}
		}
	}
}

func decodeRequest(t *testing.T, b []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

// mappedBatch maps the bench's 8-step result 20 times: one resource, one
// scope, 180 spans.
func mappedBatch(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	data := benchResult(t)
	var spans []sdktrace.ReadOnlySpan
	for range 20 {
		d, err := m.Decode(data, mapping.Source{Stored: time.Unix(1_800_000_000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := m.NewCollector(d, nil)
		if _, err := m.Map(c, d); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, c.Take()...)
	}
	return spans
}

// benchResult returns the bench's 8-step result, wherever this tree keeps
// it (the benchmarks' shared copy moves to internal/benchdata).
func benchResult(tb testing.TB) []byte {
	tb.Helper()
	for _, path := range []string{"../../internal/benchdata/bench-8-steps.json", "../../mapping/testdata/bench-8-steps.json"} {
		if data, err := os.ReadFile(path); err == nil {
			return data
		}
	}
	tb.Fatal("bench-8-steps.json not found")
	return nil
}
