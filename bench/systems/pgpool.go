package systems

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// connPool is a fixed-size pool of pgx connections, all opened up front.
//
// It stands in for pgxpool, which needs github.com/jackc/puddle/v2 and golang.org/x/sync in
// go.mod; with one request per worker at a time and size == concurrency it behaves the same: each
// request takes an idle connection, and none is ever opened during the measurement.
type connPool struct {
	all  []*pgx.Conn
	idle chan *pgx.Conn
}

// newConnPool opens size connections to dsn.
func newConnPool(ctx context.Context, dsn string, size int) (*connPool, error) {
	p := &connPool{idle: make(chan *pgx.Conn, size)}
	for range size {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			_ = p.close()
			return nil, err
		}
		p.all = append(p.all, c)
		p.idle <- c
	}
	return p, nil
}

// exec runs one statement on an idle connection, waiting for one if all are busy. pgx prepares
// and caches the statement per connection on first use.
func (p *connPool) exec(ctx context.Context, sql string, args ...any) error {
	var c *pgx.Conn
	select {
	case c = <-p.idle:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.idle <- c }()
	_, err := c.Exec(ctx, sql, args...)
	return err
}

// close closes every connection.
func (p *connPool) close() error {
	var errs []error
	for _, c := range p.all {
		errs = append(errs, c.Close(context.Background()))
	}
	return errors.Join(errs...)
}
