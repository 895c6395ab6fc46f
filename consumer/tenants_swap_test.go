package consumer_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spanferry/spanferry/consumer"
)

func TestTenantsCaptureContent(t *testing.T) {
	no, yes := false, true
	table := consumer.TenantTable{Tenants: map[string]consumer.TenantRoute{
		"quiet": {CaptureContent: &no}, "loud": {CaptureContent: &yes}, "plain": {},
	}}
	for _, def := range []bool{true, false} {
		tn := consumer.NewTenants(table, def, nil)
		want := map[string]bool{"quiet": false, "loud": true, "plain": def, "unlisted": def, "": def}
		for org, w := range want {
			if got := tn.CaptureContent(org); got != w {
				t.Errorf("default %v: CaptureContent(%q) = %v, want %v", def, org, got, w)
			}
		}
	}
}

// TestTenantsSwap checks a reload: the new table is in force at once, the
// metrics of tenants no longer listed go, and the old table is shut down.
func TestTenantsSwap(t *testing.T) {
	shut := make(chan struct{})
	old := consumer.TenantTable{
		Tenants:  map[string]consumer.TenantRoute{"acme": {}, "gone": {}},
		Shutdown: func(context.Context) error { close(shut); return nil },
	}
	tm := consumer.NewTenantMetrics(nil)
	tn := consumer.NewTenants(old, true, tm)
	if got := tn.Names(); !slices.Contains(got, "gone") || !slices.Contains(got, consumer.DefaultTenant) {
		t.Fatalf("names %v", got)
	}
	changed := tn.Changed()
	no := false
	tn.Swap(consumer.TenantTable{Tenants: map[string]consumer.TenantRoute{"acme": {CaptureContent: &no}}})
	select {
	case <-changed:
	default:
		t.Error("Changed not closed by Swap")
	}
	if tn.CaptureContent("acme") {
		t.Error("the new table is not in force")
	}
	select {
	case <-shut:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced table was not shut down")
	}
	if n := testutil.CollectAndCount(tm.Backoff); n != 2 {
		t.Errorf("%d backoff series after the reload, want 2 (acme and default)", n)
	}
}
