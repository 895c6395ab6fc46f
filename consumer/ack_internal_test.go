package consumer

import "testing"

func TestAckStored(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  stored
		ok    bool
	}{
		{"$JS.ACK.WORKFLOW_RESULTS.spanferry.1.42.17.1733000000000000000.5", stored{42, 1733000000000000000}, true},
		{"$JS.ACK.hub.ACCHASH.WORKFLOW_RESULTS.spanferry.2.43.18.1733000000000000001.0.tok", stored{43, 1733000000000000001}, true},
		{"$JS.ACK.hub.ACCHASH.WORKFLOW_RESULTS.spanferry.2.44.18.1733000000000000002.0", stored{44, 1733000000000000002}, true},
		{"_INBOX.abc", stored{}, false},
		{"$JS.ACK.S.c.1.x.17.1.5", stored{}, false},
		{"$JS.ACK.S.c.1.4.17.x.5", stored{}, false},
	} {
		got, ok := ackStored(tc.reply)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ackStored(%q) = %v, %v; want %v, %v", tc.reply, got, ok, tc.want, tc.ok)
		}
	}
}
