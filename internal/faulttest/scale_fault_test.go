//go:build fault

package faulttest

// fullSize is true under -tags fault: 20,000 results, a 30 s outage, a
// 10,000-message poison storm.
const fullSize = true
