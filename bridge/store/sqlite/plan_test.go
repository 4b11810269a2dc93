package sqlite

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQueryPlans checks that the reads that must stay cheap as the file grows use an index:
// DueTimers scans only due timers, in order, and Values only the key's rows.
func TestQueryPlans(t *testing.T) {
	s := open(t, Options{})
	for _, tc := range []struct {
		name, query string
		args        []any
		want        string
	}{
		{"due timers", readSQL[rdDue], []any{int64(0), int64(10)}, "USING COVERING INDEX timers_due (due<?)"},
		{"values", readSQL[rdValues], []any{"k"}, "USING INDEX vals_key (key=?)"},
		{"blob", readSQL[rdBlob], []any{"c", "f"}, "USING INDEX blobs_id (conv_id=? AND id=?)"},
	} {
		rows, err := s.rdb.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		all := strings.Join(plan, "; ")
		require.Contains(t, all, tc.want, tc.name)
		require.NotContains(t, all, "TEMP B-TREE", "%s sorts: %s", tc.name, all)
	}
}
