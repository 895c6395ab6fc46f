package mapping

import (
	"crypto/sha256"
	"encoding/binary"

	"go.opentelemetry.io/otel/trace"
)

// The derivations below are part of the contract (README, "Identifiers"):
// a replay on any worker must produce byte-identical ids, so changing any
// byte here is a breaking change that needs a new domain string.
const (
	traceDomain = "spanferry.trace.v1\x00"
	spanDomain  = "spanferry.span.v1\x00"
)

// DeriveTraceID returns the trace id of a result that carries none:
// the first 16 bytes of SHA-256("spanferry.trace.v1" 0x00 id).
func DeriveTraceID(resultID string) trace.TraceID {
	buf := make([]byte, 0, len(traceDomain)+len(resultID))
	buf = append(append(buf, traceDomain...), resultID...)
	sum := sha256.Sum256(buf)
	var id trace.TraceID
	copy(id[:], sum[:])
	if !id.IsValid() {
		id[15] = 1
	}
	return id
}

// spanIDs derives span ids from the path of a span in its result. It keeps
// the encoded path in one buffer that grows and shrinks as the mapping walks
// the steps, so each id costs one hash of its own path and no allocation.
//
// The encoding: "spanferry.span.v1" 0x00, the 16 trace id bytes,
// uvarint(len(result id)), the result id; then for each step from the root
// down either 's' uvarint(len(step id)) step id, or 'i' uvarint(index) for
// a step without an id. The span id is the first 8 bytes of the SHA-256 of
// that encoding (the root's: of the prefix alone).
type spanIDs struct {
	buf []byte
}

func (s *spanIDs) reset(traceID trace.TraceID, resultID string) {
	s.buf = append(s.buf[:0], spanDomain...)
	s.buf = append(s.buf, traceID[:]...)
	s.buf = binary.AppendUvarint(s.buf, uint64(len(resultID)))
	s.buf = append(s.buf, resultID...)
}

// push appends one step to the path and returns the length to pop back to.
func (s *spanIDs) push(stepID string, index int) int {
	mark := len(s.buf)
	if stepID != "" {
		s.buf = append(s.buf, 's')
		s.buf = binary.AppendUvarint(s.buf, uint64(len(stepID)))
		s.buf = append(s.buf, stepID...)
	} else {
		s.buf = append(s.buf, 'i')
		s.buf = binary.AppendUvarint(s.buf, uint64(index))
	}
	return mark
}

func (s *spanIDs) pop(mark int) { s.buf = s.buf[:mark] }

// current returns the span id of the path as it stands.
func (s *spanIDs) current() trace.SpanID {
	sum := sha256.Sum256(s.buf)
	var id trace.SpanID
	copy(id[:], sum[:])
	if !id.IsValid() {
		id[7] = 1
	}
	return id
}
