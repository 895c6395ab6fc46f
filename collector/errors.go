package collector

import "errors"

var (
	// ErrInvalidOption is wrapped by the error of an option that cannot apply.
	ErrInvalidOption = errors.New("collector: invalid option")

	// ErrInvalidTraceID is returned by New for the zero trace id.
	ErrInvalidTraceID = errors.New("collector: invalid trace id")

	// ErrForeignParent is returned by CreateSpan for a parent in another trace.
	ErrForeignParent = errors.New("collector: parent belongs to another trace")

	// ErrInvalidTimes is returned by CreateSpan for a span that ends before it starts.
	ErrInvalidTimes = errors.New("collector: span ends before it starts")

	// ErrClosed is returned by a closed collector.
	ErrClosed = errors.New("collector: closed")

	// ErrNoExporter is returned by Export on a collector made without an exporter.
	ErrNoExporter = errors.New("collector: no exporter")

	// ErrDiscarded is wrapped by the error the default discard handler reports.
	ErrDiscarded = errors.New("collector: discarded unexported spans")
)
