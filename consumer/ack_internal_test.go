package consumer

import "testing"

func TestAckStreamSeq(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  uint64
		ok    bool
	}{
		{"$JS.ACK.WORKFLOW_RESULTS.spanferry.1.42.17.1733000000000000000.5", 42, true},
		{"$JS.ACK.hub.ACCHASH.WORKFLOW_RESULTS.spanferry.2.43.18.1733000000000000000.0.tok", 43, true},
		{"$JS.ACK.hub.ACCHASH.WORKFLOW_RESULTS.spanferry.2.44.18.1733000000000000000.0", 44, true},
		{"_INBOX.abc", 0, false},
		{"$JS.ACK.S.c.1.x.17.1.5", 0, false},
	} {
		got, ok := ackStreamSeq(tc.reply)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ackStreamSeq(%q) = %d, %v; want %d, %v", tc.reply, got, ok, tc.want, tc.ok)
		}
	}
}
