package otlpenc

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Exporter is a span exporter that encodes with an Encoder and sends with
// an otlptrace.Client: each ResourceSpans goes as a message whose content
// is carried in its unknown fields, so the request on the wire is the
// encoding. The client must marshal with proto.Marshal (otlptracehttp's
// does for http/protobuf; its http/json encoding would drop the content).
type Exporter struct {
	client   otlptrace.Client
	stopOnce sync.Once
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// idle holds encoders between exports, kept across garbage collections
// (a sync.Pool would drop them and their buffers at each). It is shared by
// every Exporter of the process, so that the memory kept is bounded by
// how many exports run at once, not by how many exporters there are (one
// per tenant, say): as many as the consumer's highest default concurrency.
var idle = make(chan *Encoder, 8)

// NewExporter returns an Exporter sending with client, which it does not
// start.
func NewExporter(client otlptrace.Client) *Exporter {
	return &Exporter{client: client}
}

func (e *Exporter) encoder() *Encoder {
	select {
	case enc := <-idle:
		return enc
	default:
		return new(Encoder)
	}
}

func (e *Exporter) release(enc *Encoder) {
	enc.Reset()
	select {
	case idle <- enc:
	default:
	}
}

// ExportSpans sends spans in one request. Its errors read as those of the
// SDK's OTLP exporter ("traces export: ...").
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	enc := e.encoder()
	defer e.release(enc)
	contents, err := enc.Encode(spans)
	if err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	if len(contents) == 0 {
		return nil
	}
	carriers := make([]tracepb.ResourceSpans, len(contents))
	ptrs := make([]*tracepb.ResourceSpans, len(contents))
	for i, c := range contents {
		carriers[i].ProtoReflect().SetUnknown(protoreflect.RawFields(c))
		ptrs[i] = &carriers[i]
	}
	if err := e.client.UploadTraces(ctx, ptrs); err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

// Shutdown stops the client; later calls do nothing.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() { err = e.client.Stop(ctx) })
	return err
}
