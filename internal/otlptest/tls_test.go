package otlptest

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/internal/tlstest"
)

func TestReceiverServesTLSAcrossRestarts(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	r := StartT(t, WithTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server(t)}}))
	if !strings.HasPrefix(r.TracesURL(), "https://127.0.0.1:") {
		t.Fatalf("TracesURL() = %s, want https://127.0.0.1:PORT/v1/traces", r.TracesURL())
	}
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	post := func(client *http.Client) error {
		resp, err := client.Post(r.TracesURL(), contentTypeProto, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
		return nil
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	if err := post(trusting); err != nil {
		t.Fatalf("a client trusting the CA: %v", err)
	}
	if err := post(&http.Client{}); err == nil {
		t.Errorf("a client with the system's roots verified the test CA")
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	trusting.CloseIdleConnections()
	if err := post(trusting); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if n := len(r.Requests()); n != 2 {
		t.Errorf("%d requests recorded, want 2 (a failed handshake is not a request)", n)
	}
}
