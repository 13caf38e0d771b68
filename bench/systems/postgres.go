package systems

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// PostgresConfig configures StartPostgres.
type PostgresConfig struct {
	Common
	// BinDir holds initdb and postgres; "" means the directory of initdb on PATH, else the newest
	// /usr/lib/postgresql/*/bin.
	BinDir string
	// PoolSize is the size of the client connection pool; set it to the benchmark's concurrency.
	// Values below 1 mean 1.
	PoolSize int
	// OSUser runs the server when the benchmark runs as root (initdb refuses root); "" means
	// "postgres".
	OSUser string
}

// StartPostgres creates a fresh PostgreSQL cluster with initdb in a temporary directory, starts
// it on 127.0.0.1 with fsync=on and synchronous_commit=on, creates the table
// cases(id bigserial primary key, body text), and returns a target whose Op inserts one row with
// a ValueSize-byte body through a pool of cfg.PoolSize connections, all opened up front.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (_ *Target, err error) {
	binDir, err := postgresBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	t, err := newTarget("postgres", 1, cfg.Common)
	if err != nil {
		return nil, err
	}
	defer t.closeOnError(&err)

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = dropRootTo(cfg.OSUser, t.Dir); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(t.Dir, "data")
	err = runProcess(procSpec{
		name: "initdb", path: filepath.Join(binDir, "initdb"), dir: t.Dir, cred: cred,
		logPath: filepath.Join(t.Dir, "initdb.log"),
		// --no-sync only skips flushing the freshly created template files; the server itself
		// runs with fsync=on.
		args: []string{"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"},
	})
	if err != nil {
		return nil, err
	}

	ports, err := FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	p, err := startProcess(procSpec{
		name: "postgres", path: filepath.Join(binDir, "postgres"), dir: t.Dir, cred: cred,
		logPath: filepath.Join(t.Dir, "postgres.log"),
		// SIGINT is postgres's "fast" shutdown; SIGTERM ("smart") would wait for clients.
		stopSig: syscall.SIGINT,
		args: []string{
			"-D", data,
			"-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + t.Dir,
			"-c", "fsync=on",
			"-c", "synchronous_commit=on",
			"-c", "max_connections=200",
		},
	})
	if err != nil {
		return nil, err
	}
	t.PIDs = []int{p.pid()}
	t.onClose(p.stop)

	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=3", port)
	procs := []*process{p}
	err = waitUntil(ctx, cfg.startTimeout(), "postgres to accept connections", procs, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS cases(id bigserial PRIMARY KEY, body text)")
		return err
	})
	if err != nil {
		return nil, err
	}

	pool, err := newConnPool(ctx, dsn, max(cfg.PoolSize, 1))
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	t.onClose(pool.close)

	body := strings.Repeat("b", ValueSize)
	t.Op = func(ctx context.Context, worker, seq int) error {
		return pool.exec(ctx, "INSERT INTO cases(body) VALUES ($1)", body)
	}
	return t, nil
}

// postgresBinDir finds the directory holding initdb and postgres.
func postgresBinDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("postgres: initdb not on PATH nor in /usr/lib/postgresql/*/bin")
}

// pgMajor extracts the version from /usr/lib/postgresql/<major>/bin.
func pgMajor(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// dropRootTo returns credentials for OS user name (default "postgres") and hands dir to that
// user. PostgreSQL refuses to run as root; setting the credentials on the child directly (rather
// than wrapping it in runuser or su) keeps the postmaster our direct child, so its PID, signals and
// RSS are its own.
func dropRootTo(name, dir string) (*syscall.Credential, error) {
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("postgres must not run as root and user %q is unusable: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, err
	}
	// The parents of dir must be searchable by that user.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
