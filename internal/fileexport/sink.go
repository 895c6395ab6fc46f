package fileexport

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// sink is the http.RoundTripper behind the exporter: it answers each export
// request itself by appending the request to w as one OTLP/JSON line.
type sink struct {
	mu sync.Mutex
	w  io.Writer
	// torn is set when a write failed part-way, leaving a partial line that
	// the next line must not be glued to.
	torn bool
}

var _ http.RoundTripper = (*sink)(nil)

// RoundTrip answers 200 with an empty ExportTraceServiceResponse once the line
// is written, 500 when the write fails (otlptracehttp then returns an error
// from ExportSpans), and 4xx for a request it cannot decode.
func (s *sink) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("file exporter: read request: %w", err)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-protobuf" {
		return answer(r, http.StatusUnsupportedMediaType, "file exporter: unexpected content type "+strconv.Quote(mt)), nil
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return answer(r, http.StatusUnsupportedMediaType, "file exporter: unexpected content encoding "+strconv.Quote(enc)), nil
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		return answer(r, http.StatusBadRequest, "file exporter: decode request: "+err.Error()), nil
	}
	line, err := marshalLine(req)
	if err != nil {
		return answer(r, http.StatusInternalServerError, "file exporter: "+err.Error()), nil
	}
	// An export whose deadline passed is reported as failed by the exporter;
	// writing it anyway would only duplicate it when the caller retries.
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	if err := s.write(line); err != nil {
		return answer(r, http.StatusInternalServerError, "file exporter: write: "+err.Error()), nil
	}
	return answer(r, http.StatusOK, ""), nil
}

// write appends line with one Write call under the lock, so that lines of
// concurrent exports never interleave.
func (s *sink) write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.torn {
		line = append([]byte{'\n'}, line...)
	}
	n, err := s.w.Write(line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if n > 0 {
		s.torn = line[n-1] != '\n'
	}
	return err
}

// answer builds the response to r: an empty ExportTraceServiceResponse for
// 200, else msg as text, which otlptracehttp quotes in its error.
func answer(r *http.Request, status int, msg string) *http.Response {
	var body []byte
	header := http.Header{}
	if status == http.StatusOK {
		// An empty response marshals to zero bytes; it is still the message
		// the OTLP/HTTP specification says to answer.
		body, _ = proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		header.Set("Content-Type", "application/x-protobuf")
	} else {
		body = []byte(msg)
		header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// jsonOptions give the OTLP/JSON encoding of the OTLP specification, as far
// as protojson goes: lowerCamelCase names, enums as integers, 64-bit integers
// as strings, unset fields left out. Ids are fixed up by hexIDs.
var jsonOptions = protojson.MarshalOptions{UseEnumNumbers: true}

// marshalLine encodes req as one line of OTLP/JSON, "\n" included, with trace
// and span ids as lowercase hex as the OTLP specification requires (protojson
// would write base64).
func marshalLine(req *coltracepb.ExportTraceServiceRequest) ([]byte, error) {
	raw, err := jsonOptions.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode OTLP/JSON: %w", err)
	}
	// protojson's output varies its whitespace on purpose; compacting makes
	// lines stable and lets hexIDs find keys directly followed by ':'.
	var compact bytes.Buffer
	compact.Grow(len(raw) + 1)
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("compact OTLP/JSON: %w", err)
	}
	line, err := hexIDs(compact.Bytes())
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// idKeys are the bytes fields of spans and links that OTLP/JSON writes as hex.
var idKeys = map[string]bool{`"traceId"`: true, `"spanId"`: true, `"parentSpanId"`: true}

// hexIDs rewrites the base64 values of the id keys of compact protojson
// output to hex, keeping every other byte and the field order. OTLP has no map
// fields (attributes are lists of {key, value}), so an object key named like
// an id can only be the id field of a span or a link.
func hexIDs(src []byte) ([]byte, error) {
	out := make([]byte, 0, len(src)+len(src)/8)
	for i := 0; i < len(src); {
		if src[i] != '"' {
			out = append(out, src[i])
			i++
			continue
		}
		end := stringEnd(src, i)
		key := src[i:end]
		out = append(out, key...)
		i = end
		if !idKeys[string(key)] || i+1 >= len(src) || src[i] != ':' || src[i+1] != '"' {
			continue
		}
		valEnd := stringEnd(src, i+1)
		encoded := src[i+2 : valEnd-1] // base64 has no escapes
		id, err := base64.StdEncoding.DecodeString(string(encoded))
		if err != nil {
			return nil, fmt.Errorf("OTLP/JSON %s %q: %w", key, encoded, err)
		}
		out = append(out, ':', '"')
		out = hex.AppendEncode(out, id)
		out = append(out, '"')
		i = valEnd
	}
	return out, nil
}

// stringEnd returns the index just past the JSON string that starts with the
// quote at src[start].
func stringEnd(src []byte, start int) int {
	for i := start + 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(src)
}
