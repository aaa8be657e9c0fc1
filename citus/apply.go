package citus

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockID serializes Distribute across replicas that start together; it is
// not the migrations' lock, which is released before Distribute runs.
const lockID = 0x6d696e6970617902 // "minipay\x02"

// Enabled reports whether the database has the citus extension.
func Enabled(ctx context.Context, db *pgxpool.Pool) (bool, error) {
	var on bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&on); err != nil {
		return false, fmt.Errorf("citus: look for the extension: %w", err)
	}
	return on, nil
}

// Distribute applies Plan to a database with the citus extension, and does
// nothing (one query) to one without. It is idempotent: tables already as
// planned are left alone, so every start of every replica may run it.
// It returns the tables it changed.
func Distribute(ctx context.Context, db *pgxpool.Pool) ([]string, error) {
	on, err := Enabled(ctx, db)
	if err != nil || !on {
		return nil, err
	}
	var changed []string
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		changed = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockID)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Joins of distributed tables on columns other than their
		// distribution columns are repartitioned between the workers
		// rather than refused. Sessions that start after this see it; a
		// session that sees it already finds nothing to do (and needs no
		// right to alter the database).
		var dbName, repartition string
		if err := tx.QueryRow(ctx, `SELECT current_database(), current_setting('citus.enable_repartition_joins')`).Scan(&dbName, &repartition); err != nil {
			return err
		}
		if repartition != "on" {
			if _, err := tx.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{dbName}.Sanitize()+` SET citus.enable_repartition_joins = on`); err != nil {
				return fmt.Errorf("repartition joins: %w", err)
			}
		}
		current, err := currentKinds(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range Plan {
			kind, exists := current[t.Name]
			// A table planned local that Citus added to its metadata on its
			// own (a foreign key to a reference table) stays where it is:
			// on the coordinator.
			if !exists || kind == t.Kind || t.Kind == Local {
				continue
			}
			if err := apply(ctx, tx, t); err != nil {
				return fmt.Errorf("%s (%s): %w", t.Name, t.Kind, err)
			}
			changed = append(changed, t.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("citus: distribute: %w", err)
	}
	return changed, nil
}

// currentKinds maps every table of the public schema to its kind now:
// Local for plain tables, else what Citus's metadata says.
func currentKinds(ctx context.Context, tx pgx.Tx) (map[string]Kind, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.relname, p.partmethod::text, p.repmodel::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`)
	if err != nil {
		return nil, fmt.Errorf("read the tables' placement: %w", err)
	}
	out := map[string]Kind{}
	for rows.Next() {
		var name string
		var method, model *string
		if err := rows.Scan(&name, &method, &model); err != nil {
			return nil, err
		}
		switch {
		case method == nil:
			out[name] = Local
		case *method == "h":
			out[name] = Distributed
		case model != nil && *model == "t":
			out[name] = Reference
		default:
			out[name] = Coordinator
		}
	}
	return out, rows.Err()
}

func apply(ctx context.Context, tx pgx.Tx, t Table) error {
	ident := pgx.Identifier{t.Name}.Sanitize()
	for _, c := range t.DropOnCitus {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+ident+` DROP CONSTRAINT IF EXISTS `+pgx.Identifier{c}.Sanitize()); err != nil {
			return fmt.Errorf("drop constraint %s: %w", c, err)
		}
	}
	var err error
	switch t.Kind {
	case Reference:
		_, err = tx.Exec(ctx, `SELECT create_reference_table($1)`, t.Name)
	case Distributed:
		colocate := t.ColocateWith
		if colocate == "" {
			colocate = "none"
		}
		_, err = tx.Exec(ctx, `SELECT create_distributed_table($1, $2, colocate_with => $3)`, t.Name, t.Column, colocate)
	case Coordinator:
		_, err = tx.Exec(ctx, `SELECT citus_add_local_table_to_metadata($1, cascade_via_foreign_keys => true)`, t.Name)
	}
	return err
}

// Unplanned returns the tables of the database's public schema that Plan
// does not mention.
func Unplanned(ctx context.Context, db *pgxpool.Pool) ([]string, error) {
	rows, err := db.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var missing []string
	for _, n := range names {
		if _, ok := Lookup(n); !ok {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// Nodes returns the host and port of the coordinator and of every active
// primary worker of the Citus database conn is connected to.
func Nodes(ctx context.Context, conn *pgx.Conn) (coordinator string, coordinatorPort int, workers []Node, err error) {
	rows, err := conn.Query(ctx, `SELECT nodename, nodeport, groupid = 0 FROM pg_dist_node
		WHERE isactive AND noderole = 'primary' ORDER BY nodeid`)
	if err != nil {
		return "", 0, nil, fmt.Errorf("citus: list nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n Node
		var isCoordinator bool
		if err := rows.Scan(&n.Host, &n.Port, &isCoordinator); err != nil {
			return "", 0, nil, err
		}
		if isCoordinator {
			coordinator, coordinatorPort = n.Host, n.Port
		} else {
			workers = append(workers, n)
		}
	}
	return coordinator, coordinatorPort, workers, rows.Err()
}

// Node is one node of a Citus cluster.
type Node struct {
	Host string
	Port int
}

// CreateDatabase creates database name on every node of the Citus cluster
// whose database cfg names (the coordinator and its active workers), with
// the citus extension, and registers the same workers in it. It reports
// false, creating nothing, when cfg's database does not have Citus. Drop
// removes it from every node again.
func CreateDatabase(ctx context.Context, cfg *pgx.ConnConfig, name string) (created bool, drop func(context.Context) error, err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name: no such database, so no Citus
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("citus: connect: %w", err)
	}
	defer conn.Close(ctx)
	var on bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&on); err != nil || !on {
		return false, nil, err
	}
	coordHost, coordPort, workers, err := Nodes(ctx, conn)
	if err != nil {
		return false, nil, err
	}
	if coordHost == "" {
		coordHost, coordPort = cfg.Host, int(cfg.Port)
	}
	nodeCfg := func(n Node, db string) *pgx.ConnConfig {
		c := cfg.Copy()
		c.Host, c.Port, c.Database = n.Host, uint16(n.Port), db
		c.Fallbacks = nil
		return c
	}
	nodes := append([]Node{{coordHost, coordPort}}, workers...)
	ident := pgx.Identifier{name}.Sanitize()
	exec := func(n Node, db, sql string, args ...any) error {
		c, err := pgx.ConnectConfig(ctx, nodeCfg(n, db))
		if err != nil {
			return fmt.Errorf("citus: connect to %s:%d: %w", n.Host, n.Port, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("citus: on %s:%d: %w", n.Host, n.Port, err)
		}
		return nil
	}
	drop = func(ctx context.Context) error {
		var first error
		for _, n := range nodes {
			if err := exec(n, "postgres", `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, n := range nodes {
		if err := exec(n, "postgres", `CREATE DATABASE `+ident); err != nil {
			_ = drop(ctx)
			return false, nil, err
		}
		if err := exec(n, name, `CREATE EXTENSION citus`); err != nil {
			_ = drop(ctx)
			return false, nil, err
		}
	}
	if err := exec(nodes[0], name, `SELECT citus_set_coordinator_host($1, $2)`, coordHost, coordPort); err != nil {
		_ = drop(ctx)
		return false, nil, err
	}
	for _, w := range workers {
		if err := exec(nodes[0], name, `SELECT citus_add_node($1, $2)`, w.Host, w.Port); err != nil {
			_ = drop(ctx)
			return false, nil, err
		}
	}
	return true, drop, nil
}
