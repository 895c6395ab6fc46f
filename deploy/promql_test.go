package deploy_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
)

// The PromQL of the alerts and the dashboard is parsed with VictoriaMetrics'
// metricsql, a maintained stand-alone parser with four small dependencies;
// Prometheus' own promql/parser comes with the prometheus/prometheus module
// (some 250 modules, a newer go directive, and newer versions of modules the
// worker shares, which would change the worker these tests build). metricsql
// parses MetricsQL, a superset of PromQL, so checkPromQL refuses what PromQL
// lacks: WITH templates, functions and operators outside PromQL's, a
// rollup function without an explicit range, a range vector where PromQL
// wants an instant vector.

// promqlFunctions are PromQL's functions (Prometheus 3) and aggregation
// operators.
var promqlFunctions = setOf(
	"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
	"count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
	"delta", "deriv", "double_exponential_smoothing", "exp", "floor", "histogram_avg",
	"histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
	"histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate",
	"label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
	"max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
	"present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn",
	"sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt",
	"stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp",
	"vector", "year",
	// aggregation operators
	"avg", "bottomk", "count", "count_values", "group", "limit_ratio", "limitk", "max", "min",
	"quantile", "stddev", "stdvar", "sum", "topk",
)

// promqlOperators are PromQL's binary operators.
var promqlOperators = setOf("+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "atan2")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var withTemplate = regexp.MustCompile(`(?i)\bwith\s*\(`)

// selector is one series selector of an expression: a metric name and the
// labels it must equal.
type selector struct {
	metric string
	equals map[string]string
}

// checkPromQL parses expr as PromQL and returns its selectors.
func checkPromQL(expr string) ([]selector, error) {
	if withTemplate.MatchString(expr) {
		return nil, fmt.Errorf("WITH templates are MetricsQL, not PromQL")
	}
	e, err := metricsql.Parse(expr)
	if err != nil {
		return nil, err
	}
	var (
		errs      []string
		sels      []selector
		rangeArgs = map[*metricsql.RollupExpr]bool{}
		ranges    []*metricsql.RollupExpr
	)
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		switch v := x.(type) {
		case *metricsql.FuncExpr:
			name := strings.ToLower(v.Name)
			if !promqlFunctions[name] {
				errs = append(errs, fmt.Sprintf("%s() is not a PromQL function", v.Name))
			}
			if i := metricsql.GetRollupArgIdx(v); i >= 0 && i < len(v.Args) {
				if r, ok := v.Args[i].(*metricsql.RollupExpr); ok && r.Window != nil {
					rangeArgs[r] = true
				} else {
					errs = append(errs, fmt.Sprintf("%s() needs a range vector (metric[5m]); PromQL has no implicit window", v.Name))
				}
			}
		case *metricsql.AggrFuncExpr:
			if !promqlFunctions[strings.ToLower(v.Name)] {
				errs = append(errs, fmt.Sprintf("%s is not a PromQL aggregation", v.Name))
			}
		case *metricsql.BinaryOpExpr:
			if !promqlOperators[strings.ToLower(v.Op)] {
				errs = append(errs, fmt.Sprintf("%q is not a PromQL operator", v.Op))
			}
		case *metricsql.RollupExpr:
			if v.Window != nil || v.Step != nil {
				ranges = append(ranges, v)
			}
		case *metricsql.MetricExpr:
			if len(v.LabelFilterss) != 1 {
				errs = append(errs, "\"or\" inside a selector is MetricsQL, not PromQL")
				return
			}
			s := selector{equals: map[string]string{}}
			for _, f := range v.LabelFilterss[0] {
				switch {
				case f.Label == "__name__" && !f.IsRegexp && !f.IsNegative:
					s.metric = f.Value
				case !f.IsRegexp && !f.IsNegative:
					s.equals[f.Label] = f.Value
				}
			}
			if s.metric == "" {
				errs = append(errs, "a selector without a metric name")
			}
			sels = append(sels, s)
		}
	})
	for _, r := range ranges {
		if !rangeArgs[r] {
			errs = append(errs, fmt.Sprintf("%s is a range vector outside a range function", r.AppendString(nil)))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return sels, nil
}
