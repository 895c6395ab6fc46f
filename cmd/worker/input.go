package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// readResults reads the workflow results of one input: a JSON object, a
// JSON array of objects, or JSON lines. Each result is returned as the raw
// bytes of its object, unchanged, so that decoding errors are the mapping's
// to report.
func readResults(r io.Reader) ([]json.RawMessage, error) {
	br := bufio.NewReader(r)
	first, err := firstNonSpace(br)
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(br)
	if first == '[' {
		var all []json.RawMessage
		if err := dec.Decode(&all); err != nil {
			return nil, fmt.Errorf("array of results: %w", err)
		}
		return all, nil
	}
	var out []json.RawMessage
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("result %d: %w", len(out), err)
		}
		out = append(out, raw)
	}
}

func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
		default:
			return b, br.UnreadByte()
		}
	}
}

// openInput opens a file argument, "-" being stdin.
func openInput(name string, stdin io.Reader) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(name)
}
