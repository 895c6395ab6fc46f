// Package otlpenc writes OpenTelemetry spans as OTLP/protobuf in one pass,
// the bytes proto.Marshal makes of what the SDK's OTLP transformation
// (otlptrace/internal/tracetransform) builds from them: same fields, same
// order, same grouping into ResourceSpans and ScopeSpans. Only the order of
// a request's ResourceSpans differs: first seen here, a map's (random)
// there.
//
// It exists for speed: the transformation allocates about three objects
// per attribute and proto.Marshal walks them by reflection, which together
// cost several times the mapping of a result. Exporter hands the encoding
// to an otlptrace.Client (otlptracehttp's) in ResourceSpans whose content
// is carried in their unknown fields, which proto.Marshal writes back
// verbatim, so that everything else (configuration, headers, compression,
// timeouts, retries, partial successes) stays the client's.
//
// The tests hold it to the SDK: byte-identical ResourceSpans for every
// example result and for stubs covering every field, attribute type,
// event, link, status and several resources and scopes, and FuzzEncode
// comparing the decoded requests of both on generated spans.
package otlpenc
