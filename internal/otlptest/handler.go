package otlptest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// serveHTTP answers POST /v1/traces; any other path is 404, any other method 405.
func (r *Receiver) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	if hr.URL.Path != TracesPath {
		http.NotFound(w, hr)
		return
	}
	if hr.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	req := Request{Header: hr.Header.Clone()}
	mediaType, _, _ := mime.ParseMediaType(hr.Header.Get("Content-Type"))
	switch mediaType {
	case contentTypeProto, "application/protobuf":
	case contentTypeJSON:
		req.JSON = true
	default:
		r.fail(w, req, http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported content type %q", mediaType))
		return
	}

	data, status, err := readBody(w, hr, &req)
	if err != nil {
		r.fail(w, req, status, err.Error())
		return
	}
	body := &coltracepb.ExportTraceServiceRequest{}
	if req.JSON {
		err = UnmarshalJSON(data, body)
	} else {
		err = proto.Unmarshal(data, body)
	}
	if err != nil {
		r.fail(w, req, http.StatusBadRequest, "decode request: "+err.Error())
		return
	}
	req.Body, req.Spans = body, countSpans(body)

	resp := Response{}
	if f := r.currentBehavior(); f != nil {
		resp = f(body)
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Status < 200 || resp.Status > 599 {
		resp = Response{Status: http.StatusInternalServerError, ErrorMessage: fmt.Sprintf("otlptest: behaviour returned status %d", resp.Status)}
	}
	req.Response = resp
	r.record(req) // before answering, so an exporter that returned sees its request recorded
	writeResponse(w, req.JSON, resp)
}

// fail records req, which could not be decoded, and answers status with msg.
func (r *Receiver) fail(w http.ResponseWriter, req Request, status int, msg string) {
	req.Response = Response{Status: status, ErrorMessage: msg}
	r.record(req)
	writeResponse(w, req.JSON, req.Response)
}

// readBody reads the request body, decompressed, bounded by MaxBodySize. On
// error it returns the status to answer.
func readBody(w http.ResponseWriter, hr *http.Request, req *Request) ([]byte, int, error) {
	var body io.Reader = http.MaxBytesReader(w, hr.Body, MaxBodySize)
	switch enc := strings.ToLower(strings.TrimSpace(hr.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		req.Gzip = true
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, readStatus(err), fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported content encoding %q", enc)
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxBodySize+1))
	if err != nil {
		return nil, readStatus(err), fmt.Errorf("read body: %w", err)
	}
	if len(data) > MaxBodySize {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes after decompression", MaxBodySize)
	}
	return data, 0, nil
}

func readStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// writeResponse answers resp: an ExportTraceServiceResponse for a 2xx status,
// else a google.rpc.Status, as the OTLP/HTTP specification says, encoded as
// the request was.
func writeResponse(w http.ResponseWriter, asJSON bool, resp Response) {
	var msg proto.Message
	if resp.Status >= 200 && resp.Status <= 299 {
		out := &coltracepb.ExportTraceServiceResponse{}
		if resp.RejectedSpans > 0 || resp.ErrorMessage != "" {
			out.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
				RejectedSpans: max(resp.RejectedSpans, 0),
				ErrorMessage:  resp.ErrorMessage,
			}
		}
		msg = out
	} else {
		text := resp.ErrorMessage
		if text == "" {
			text = http.StatusText(resp.Status)
		}
		msg = &statuspb.Status{Code: grpcCode(resp.Status), Message: text}
	}

	var (
		data []byte
		err  error
	)
	if asJSON {
		w.Header().Set("Content-Type", contentTypeJSON)
		data, err = protojson.Marshal(msg)
	} else {
		w.Header().Set("Content-Type", contentTypeProto)
		data, err = proto.Marshal(msg)
	}
	if err != nil { // cannot happen for these messages
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if resp.RetryAfter != "" {
		w.Header().Set("Retry-After", resp.RetryAfter)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(data)
}

// grpcCode maps an HTTP error status to the google.rpc.Code a collector
// would put in its google.rpc.Status body.
func grpcCode(status int) int32 {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return 5 // NOT_FOUND
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusNotImplemented:
		return 12 // UNIMPLEMENTED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	case http.StatusInternalServerError:
		return 13 // INTERNAL
	default:
		return 2 // UNKNOWN
	}
}

func countSpans(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

// UnmarshalJSON decodes an OTLP/JSON request: a request body, or a line of
// the file exporter. OTLP/JSON differs from the canonical protobuf JSON
// mapping in that trace and span ids are hex, not base64, so they are
// rewritten before protojson decodes the document.
func UnmarshalJSON(data []byte, req *coltracepb.ExportTraceServiceRequest) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep 64-bit integers exact
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	if err := hexIDsToBase64(doc); err != nil {
		return err
	}
	canonical, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(canonical, req)
}

// hexIDsToBase64 rewrites the ids of the spans and span links of an
// ExportTraceServiceRequest document, under their JSON or proto field names.
func hexIDsToBase64(doc any) error {
	for _, rs := range field(doc, "resourceSpans", "resource_spans") {
		for _, ss := range field(rs, "scopeSpans", "scope_spans") {
			for _, span := range field(ss, "spans") {
				if err := rewriteIDs(span); err != nil {
					return err
				}
				for _, link := range field(span, "links") {
					if err := rewriteIDs(link); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// field returns the array under the first of names present in the object v.
func field(v any, names ...string) []any {
	obj, _ := v.(map[string]any)
	for _, name := range names {
		if arr, ok := obj[name].([]any); ok {
			return arr
		}
	}
	return nil
}

var idFields = []string{"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"}

func rewriteIDs(v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for _, name := range idFields {
		raw, ok := obj[name]
		if !ok {
			continue
		}
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("%s: not a string", name)
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%s %q: not hex", name, s)
		}
		obj[name] = base64.StdEncoding.EncodeToString(b)
	}
	return nil
}
