package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
)

// Stats counts what one Map call did.
type Stats struct {
	// Spans is the number of spans written: one for the result and one per step.
	Spans int
	// Truncations is the number of attribute values cut to the limit.
	Truncations int
	// Redactions counts the replacements of each redaction rule that
	// replaced anything, by rule name (nil when none did; see WithRedactor).
	Redactions map[string]int
}

// Map writes the spans of d into c: the root span for the result and one
// span per step, nested as the steps nest, with the times, ids and
// attributes of CONTRACT §1–2. c must be for d's trace (NewCollector makes
// one). Map does not export. Spans are written children first, as they
// would end in a live trace.
func (m *Mapper) Map(c *collector.Collector, d *Decoded) (Stats, error) {
	if c.TraceID() != d.TraceID {
		return Stats{}, fmt.Errorf("mapping: collector is for trace %s, result %q is in trace %s", c.TraceID(), d.Result.ID, d.TraceID)
	}
	w := walker{m: m, c: c, d: d, next: 1, content: m.content.contentFor(&d.Result)}
	w.ids.buf = w.idBuf[:0]
	w.ids.reset(d.TraceID, d.Result.ID)
	w.attrs = c.AttributeSpace(usualAttrs*len(d.nodes) + d.metadata)
	w.text.Grow(d.textBytes)
	if err := w.root(); err != nil {
		return w.stats, err
	}
	return w.stats, nil
}

// walker carries one Map call's state down the steps.
type walker struct {
	m     *Mapper
	c     *collector.Collector
	d     *Decoded
	ids   spanIDs
	next  int // index in d.nodes of the next step, in pre-order
	stats Stats

	content content // the content controls for this result (content.go)

	// attrs is the slab every span's attributes are cut from (the
	// collector's AttributeSpace, which Recycle reuses), and text holds
	// every string Map makes (input and output texts, metadata keys and
	// values, entity paths): an allocation or two per result rather than
	// one per span and per string. The spans keep them alive.
	attrs []attribute.KeyValue
	text  strings.Builder
	idBuf [128]byte // the span id derivation's buffer, for the usual paths
}

// Room for the attributes of a span besides its metadata: the most a root
// and a step can have, and what the slab is sized for (a step of a model
// call has 14, most steps 10).
const (
	rootAttrs  = 12
	stepAttrs  = 16
	usualAttrs = 12
)

// newAttrs returns an empty slice with room for n attributes at the end of
// the slab. One span's attributes are made at a time: done gives back the
// room they did not use.
func (w *walker) newAttrs(n int) []attribute.KeyValue {
	if cap(w.attrs)-len(w.attrs) < n {
		w.attrs = w.c.AttributeSpace(max(n, cap(w.attrs)))
	}
	l := len(w.attrs)
	return w.attrs[l : l : l+n]
}

// done takes the attributes made in newAttrs's room out of the slab, and
// returns them with no spare capacity, so that nothing appended to one
// span's attributes can reach another's.
func (w *walker) done(attrs []attribute.KeyValue) []attribute.KeyValue {
	if l := len(w.attrs); len(attrs) > 0 && l < cap(w.attrs) && &attrs[0] == &w.attrs[:l+1][l] {
		w.attrs = w.attrs[:l+len(attrs)]
	}
	return attrs[:len(attrs):len(attrs)]
}

// keep copies b into the result's text and returns it as a string.
func (w *walker) keep(b []byte) string {
	start := w.text.Len()
	w.text.Write(b)
	// Text already written is never modified: a Builder only appends, and
	// leaves its old buffer to the strings cut from it when it grows.
	return w.text.String()[start:]
}

// join returns a + sep + b from the result's text.
func (w *walker) join(a, sep, b string) string {
	start := w.text.Len()
	w.text.WriteString(a)
	w.text.WriteString(sep)
	w.text.WriteString(b)
	return w.text.String()[start:]
}

func (w *walker) root() error {
	r := &w.d.Result
	n := w.d.nodes[0]
	sc := w.spanContext(w.ids.current())

	// The root's times follow CONTRACT §1: started_at, else end − latency,
	// else end − the top-level steps' durations; its end is ended_at, else
	// start + latency, else its last child's end, else its start — and the
	// stored time when it has neither started_at nor ended_at.
	var start, end time.Time
	endKnown := true
	switch {
	case !n.start.IsZero():
		start = n.start
		switch {
		case !n.end.IsZero():
			end = n.end
		case n.hasLatency:
			end = start.Add(n.latency)
		default:
			endKnown = false
		}
	default:
		end = n.end
		if end.IsZero() {
			end = w.d.Stored
		}
		if n.hasLatency {
			start = end.Add(-n.latency)
		} else {
			sum, _ := nominal(r.Steps, w.d.nodes, 1)
			start = end.Add(-sum)
		}
	}

	lastEnd, err := w.steps(r.Steps, sc, start, "")
	if err != nil {
		return err
	}
	if !endKnown {
		end = start
		if len(r.Steps) > 0 {
			end = lastEnd
		}
	}
	if end.Before(start) {
		end = start // only a derived end can be early: explicit times were validated
	}

	attrs := w.newAttrs(rootAttrs + len(r.Metadata))
	attrs = append(attrs,
		AttrTraceloopSpanKind.String(traceloopWorkflow),
		AttrGenAIOperationName.String(opInvokeWorkflow),
		w.str(AttrTraceloopEntityName, r.Name),
		w.str(AttrTraceloopWorkflowName, r.Name),
		w.str(AttrResultID, r.ID),
		w.str(AttrStatus, statusOf(r.Status)),
	)
	if r.CustomerID != "" {
		attrs = append(attrs, w.str(AttrKeywordsAICustomer, r.CustomerID))
	}
	if r.ThreadID != "" {
		attrs = append(attrs, w.str(AttrKeywordsAIThread, r.ThreadID))
	}
	if r.Organization != "" {
		attrs = append(attrs, w.str(AttrKeywordsAIMetadataPrefix+"organization", r.Organization))
	}
	if r.ExperimentID != "" {
		attrs = append(attrs, w.str(AttrKeywordsAIMetadataPrefix+"experiment_id", r.ExperimentID))
	}
	attrs = w.done(w.execution(attrs, &r.Execution))
	return w.create(r.Name, w.d.Parent, sc.SpanID(), start, end, attrs, &r.Execution)
}

// steps writes the spans of steps under parent, the first starting at
// cursor, and returns the end of the last one.
func (w *walker) steps(steps []Step, parent trace.SpanContext, cursor time.Time, entityPath string) (time.Time, error) {
	for i := range steps {
		s := &steps[i]
		n := w.d.nodes[w.next]
		w.next++

		mark := w.ids.push(s.ID, i)
		spanID := w.ids.current()
		if s.SpanID != "" {
			spanID, _ = trace.SpanIDFromHex(s.SpanID) // validated
		}
		sc := w.spanContext(spanID)

		// A step without started_at starts where its previous sibling
		// ended (the first, with its parent); one that has ended_at and
		// latency_ms but no started_at starts latency_ms before its end.
		start := cursor
		switch {
		case !n.start.IsZero():
			start = n.start
		case !n.end.IsZero() && n.hasLatency:
			start = n.end.Add(-n.latency)
		}
		childPath := ""
		if len(s.Steps) > 0 {
			childPath = s.Name
			if entityPath != "" {
				childPath = w.join(entityPath, ".", s.Name)
			}
		}
		childrenEnd, err := w.steps(s.Steps, sc, start, childPath)
		w.ids.pop(mark)
		if err != nil {
			return time.Time{}, err
		}

		var end time.Time
		switch {
		case !n.end.IsZero():
			end = n.end
		case n.hasLatency:
			end = start.Add(n.latency)
		case len(s.Steps) > 0:
			end = childrenEnd
		default:
			end = start
		}
		if end.Before(start) {
			// Whichever time was given wins over the derived one.
			if !n.end.IsZero() {
				start = end
			} else {
				end = start
			}
		}

		if err := w.create(s.Name, parent, spanID, start, end, w.stepAttributes(s, entityPath), &s.Execution); err != nil {
			return time.Time{}, err
		}
		cursor = end
	}
	return cursor, nil
}

func (w *walker) stepAttributes(s *Step, entityPath string) []attribute.KeyValue {
	kind := s.Kind
	if kind == "" {
		kind = KindTask
	}
	k, ok := stepKinds[kind]
	if !ok {
		k = stepKinds[KindTask]
	}
	attrs := w.newAttrs(stepAttrs + len(s.Metadata))
	attrs = append(attrs,
		AttrTraceloopSpanKind.String(k.traceloop),
		w.str(AttrStepKind, kind),
		w.str(AttrTraceloopEntityName, s.Name),
		w.str(AttrTraceloopWorkflowName, w.d.Result.Name),
		w.str(AttrTraceloopEntityPath, entityPath),
		w.str(AttrResultID, w.d.Result.ID),
		w.str(AttrStatus, statusOf(s.Status)),
	)
	if k.operation != "" {
		attrs = append(attrs, AttrGenAIOperationName.String(k.operation))
	}
	if s.ID != "" {
		attrs = append(attrs, w.str(AttrStepID, s.ID))
	}
	if s.Model != "" {
		attrs = append(attrs, w.str(AttrGenAIRequestModel, s.Model))
	}
	if s.Provider != "" {
		attrs = append(attrs, w.str(AttrGenAIProviderName, s.Provider))
	}
	if s.Usage != nil {
		if s.Usage.InputTokens != nil {
			attrs = append(attrs, AttrGenAIUsageInputTokens.Int64(*s.Usage.InputTokens))
		}
		if s.Usage.OutputTokens != nil {
			attrs = append(attrs, AttrGenAIUsageOutputToken.Int64(*s.Usage.OutputTokens))
		}
	}
	if s.Cost != nil {
		attrs = append(attrs, AttrGenAIUsageCost.Float64(*s.Cost))
	}
	return w.done(w.execution(attrs, &s.Execution))
}

// create writes one span with the status and exception event of
// CONTRACT §2: status failed or error makes the span status Error, and an
// error object becomes an exception event at the span's end.
func (w *walker) create(name string, parent trace.SpanContext, spanID trace.SpanID, start, end time.Time, attrs []attribute.KeyValue, ex *Execution) error {
	var st sdktrace.Status
	e := ex.Error
	var message string
	if e != nil {
		message = w.redact(e.Message)
	}
	if ex.Status == StatusFailed || ex.Status == StatusError {
		st = sdktrace.Status{Code: codes.Error, Description: ex.Status}
		if message != "" {
			st.Description = w.cut(message)
		}
	}
	var events []sdktrace.Event
	if e != nil {
		events = []sdktrace.Event{{
			Name: semconv.ExceptionEventName,
			Time: end,
			Attributes: w.done(append(w.newAttrs(2),
				w.str(semconv.ExceptionTypeKey, e.Type),
				w.str(semconv.ExceptionMessageKey, message),
			)),
		}}
	}
	_, err := w.c.CreateSpan(collector.Span{
		Name:       name,
		Parent:     parent,
		SpanID:     spanID,
		Kind:       trace.SpanKindInternal,
		Start:      start,
		End:        end,
		Attributes: attrs,
		Status:     st,
		Events:     events,
	})
	if err != nil {
		return fmt.Errorf("mapping: result %q: %w", w.d.Result.ID, err)
	}
	w.stats.Spans++
	return nil
}

func (w *walker) spanContext(id trace.SpanID) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: w.d.TraceID, SpanID: id, TraceFlags: trace.FlagsSampled})
}

// str makes a string attribute, truncated to the value limit.
func (w *walker) str(k attribute.Key, v string) attribute.KeyValue {
	return k.String(w.cut(v))
}

// cut truncates v to the value limit, counting each truncation.
func (w *walker) cut(v string) string {
	if lim := w.m.limits.MaxAttrValueLen; lim >= 0 && len(v) > lim {
		if t := truncate(v, lim); len(t) < len(v) {
			w.stats.Truncations++
			return t
		}
	}
	return v
}

// execution appends the attributes a result and a step share: input,
// output and metadata.
func (w *walker) execution(attrs []attribute.KeyValue, e *Execution) []attribute.KeyValue {
	attrs = w.json(attrs, AttrTraceloopEntityInput, e.Input)
	attrs = w.json(attrs, AttrTraceloopEntityOutput, e.Output)
	return w.metadata(attrs, e.Metadata)
}

// json appends the JSON text of an input or output; null and absent values
// are left out.
func (w *walker) json(attrs []attribute.KeyValue, k attribute.Key, raw json.RawMessage) []attribute.KeyValue {
	if len(raw) == 0 || string(raw) == "null" || !w.content.capture {
		return attrs
	}
	if w.content.redactor != nil {
		return append(attrs, w.str(k, w.redactJSON(raw)))
	}
	var text string
	if utf8.Valid(raw) {
		text = w.keep(raw)
	} else {
		// encoding/json repairs decoded strings but keeps raw values as
		// sent, and OTLP's protobuf refuses invalid UTF-8: one such value
		// would fail the whole export request.
		text = strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return append(attrs, w.str(k, text))
}

// metadata appends keywordsai.metadata.<key> for each key, in key order so
// that the same message always yields the same attribute order.
func (w *walker) metadata(attrs []attribute.KeyValue, md map[string]json.RawMessage) []attribute.KeyValue {
	if len(md) == 0 {
		return attrs
	}
	var room [16]string
	keys := room[:0]
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := md[k]
		if raw[0] == 'n' { // null
			continue
		}
		key := attribute.Key(w.join(AttrKeywordsAIMetadataPrefix, "", k))
		if raw[0] == '"' {
			attrs = append(attrs, w.str(key, w.redact(w.jsonString(raw))))
		} else {
			attrs = append(attrs, attribute.KeyValue{Key: key, Value: w.scalar(raw)})
		}
	}
	return attrs
}

// jsonString decodes a JSON string validated by the decoder: as sent when
// it has no escape and is valid UTF-8 (what encoding/json would return),
// else by encoding/json.
func (w *walker) jsonString(raw json.RawMessage) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return w.keep(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // the decoder already checked it
	return s
}

// scalar converts a validated metadata number or boolean to an attribute
// value: an int64 when it is one, else a float64.
func (w *walker) scalar(raw json.RawMessage) attribute.Value {
	switch raw[0] {
	case 't':
		return attribute.BoolValue(true)
	case 'f':
		return attribute.BoolValue(false)
	}
	s := w.keep(raw)
	if !strings.ContainsAny(s, ".eE") { // else ParseInt fails, and allocates its error
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return attribute.Int64Value(i)
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return attribute.Float64Value(f)
}

// nominal returns the summed durations of steps for a root without a start:
// a step's duration is ended_at − started_at, else latency_ms, else the sum
// of its children's. It returns the pre-order index after the steps.
func nominal(steps []Step, nodes []node, idx int) (time.Duration, int) {
	var sum time.Duration
	for i := range steps {
		n := nodes[idx]
		var children time.Duration
		children, idx = nominal(steps[i].Steps, nodes, idx+1)
		switch {
		case !n.start.IsZero() && !n.end.IsZero():
			sum += n.end.Sub(n.start)
		case n.hasLatency:
			sum += n.latency
		default:
			sum += children
		}
	}
	return sum, idx
}

func statusOf(s string) string {
	if s == "" {
		return StatusCompleted
	}
	return s
}

// truncate cuts s to at most limit characters (runes), as OTel's attribute
// value length limit counts; a negative limit keeps s whole.
func truncate(s string, limit int) string {
	if limit < 0 || len(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i]
		}
		n++
	}
	return s
}
