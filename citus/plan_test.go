package citus_test

import (
	"context"
	"testing"
	"time"

	"github.com/minipay/minipay/citus"
	"github.com/minipay/minipay/internal/testdb"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestEveryTableIsPlanned fails for a table of the schema without a row in
// the plan, so that a new table cannot reach a Citus cluster undecided,
// and for a row naming a table that no longer exists.
func TestEveryTableIsPlanned(t *testing.T) {
	ctx := ctxT(t)
	db := testdb.New(t)
	missing, err := citus.Unplanned(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range missing {
		t.Errorf("table %s has no row in citus.Plan: decide where it lives on a Citus cluster (docs/scaling.md)", name)
	}
	seen := map[string]bool{}
	for i, p := range citus.Plan {
		var exists bool
		if err := db.Pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, p.Name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("citus.Plan names %s, which the schema does not have", p.Name)
		}
		if seen[p.Name] {
			t.Errorf("citus.Plan names %s twice", p.Name)
		}
		seen[p.Name] = true
		if p.Why == "" {
			t.Errorf("%s: the plan says not why", p.Name)
		}
		if (p.Kind == citus.Distributed) != (p.Column != "") {
			t.Errorf("%s: a distribution column belongs to distributed tables, and every one needs it", p.Name)
		}
		if p.ColocateWith != "" {
			j := -1
			for k, q := range citus.Plan[:i] {
				if q.Name == p.ColocateWith && q.Kind == citus.Distributed {
					j = k
				}
			}
			if j < 0 {
				t.Errorf("%s: co-located with %s, which is not a distributed table before it in the plan", p.Name, p.ColocateWith)
			}
		}
	}
}

// TestDistributeSingleNode: on a database without Citus, Distribute
// changes nothing.
func TestDistributeSingleNode(t *testing.T) {
	ctx := ctxT(t)
	db := testdb.New(t)
	changed, err := citus.Distribute(ctx, db.Pool)
	if err != nil || len(changed) != 0 {
		t.Fatalf("Distribute on a single node = %v, %v; want nothing", changed, err)
	}
}

// TestDistributeOnCitus: migrating a Citus database places every table as
// planned, and a second run (every replica's start) changes nothing.
func TestDistributeOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	ctx := ctxT(t)
	db := testdb.New(t)
	changed, err := citus.Distribute(ctx, db.Pool)
	if err != nil || len(changed) != 0 {
		t.Fatalf("second Distribute = %v, %v; want nothing to do", changed, err)
	}
	for _, p := range citus.Plan {
		var typ, column string
		err := db.Pool.QueryRow(ctx, `
			SELECT coalesce((SELECT citus_table_type || '/' || distribution_column FROM citus_tables
				WHERE table_name = to_regclass($1)), 'none/'),
				coalesce((SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition
				WHERE logicalrelid = to_regclass($1)), '')`, p.Name).Scan(&typ, &column)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		switch p.Kind {
		case citus.Distributed:
			want = "distributed/" + p.Column
		case citus.Reference:
			want = "reference/<none>"
		case citus.Coordinator:
			want = "local/<none>" // a Citus local table
		case citus.Local:
			want = "none/" // not in Citus's metadata
		}
		if typ != want {
			t.Errorf("%s is %s; the plan says %s", p.Name, typ, want)
		}
	}
	var coordinator int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_dist_partition p WHERE partmethod = 'n' AND repmodel = 's'`).Scan(&coordinator); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, p := range citus.Plan {
		if p.Kind == citus.Coordinator {
			want++
		}
	}
	if coordinator != want {
		t.Errorf("%d tables on the coordinator in Citus's metadata, want %d", coordinator, want)
	}
}
