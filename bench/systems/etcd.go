package systems

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig configures StartEtcd.
type EtcdConfig struct {
	Common
	// Binary is the etcd server binary; "" means "etcd" from PATH. Written against etcd 3.4.
	Binary string
	// Nodes is the cluster size (1 or 3 in the benchmarks); values below 1 mean 1.
	Nodes int
}

// StartEtcd starts an etcd cluster of cfg.Nodes members on 127.0.0.1 with default durability
// (fsync on every commit), waits until every member reports healthy and a Put succeeds, and
// returns a target whose Op puts a unique key with a ValueSize-byte value. The client knows every
// member's endpoint and spreads requests over them.
func StartEtcd(ctx context.Context, cfg EtcdConfig) (_ *Target, err error) {
	n := max(cfg.Nodes, 1)
	t, bin, ports, err := newCluster("etcd", cfg.Binary, n, 2, cfg.Common)
	if err != nil {
		return nil, err
	}
	defer t.closeOnError(&err)

	names := make([]string, n)
	clientURLs := make([]string, n)
	peerURLs := make([]string, n)
	initial := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("m%d", i+1)
		clientURLs[i] = fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peerURLs[i] = fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		initial[i] = names[i] + "=" + peerURLs[i]
	}
	token := fmt.Sprintf("govgrid-bench-%d-%d", os.Getpid(), time.Now().UnixNano())

	var procs []*process
	for i := range n {
		args := []string{
			"--name", names[i],
			"--data-dir", filepath.Join(t.Dir, names[i]),
			"--listen-client-urls", clientURLs[i],
			"--advertise-client-urls", clientURLs[i],
			"--listen-peer-urls", peerURLs[i],
			"--initial-advertise-peer-urls", peerURLs[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			// 3.4 defaults to the deprecated capnslog logger and warns about it.
			"--logger", "zap",
			"--log-outputs", "stderr",
		}
		p, err := startProcess(procSpec{
			name: "etcd " + names[i], path: bin, args: args, dir: t.Dir,
			logPath: filepath.Join(t.Dir, names[i]+".log"),
		})
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		t.PIDs = append(t.PIDs, p.pid())
	}
	// Stop the members one after another: an etcd leader hands over leadership before it exits
	// and, if its followers are stopping at the same time, waits seconds for that to time out.
	t.onClose(func() error { return stopEach(procs) })

	timeout := cfg.startTimeout()
	hc := &http.Client{}
	for i, u := range clientURLs {
		err := waitUntil(ctx, timeout, "etcd "+names[i]+" /health", procs, func(ctx context.Context) error {
			return etcdHealthy(ctx, hc, u+"/health")
		})
		if err != nil {
			return nil, err
		}
	}

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   clientURLs,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	t.onClose(cli.Close)

	value := strings.Repeat("v", ValueSize)
	err = waitUntil(ctx, timeout, "an etcd Put", procs, func(ctx context.Context) error {
		_, err := cli.Put(ctx, "/bench/ready", "ok")
		return err
	})
	if err != nil {
		return nil, err
	}
	t.Op = func(ctx context.Context, worker, seq int) error {
		_, err := cli.Put(ctx, fmt.Sprintf("/bench/%04d/%010d", worker, seq), value)
		return err
	}
	return t, nil
}

// etcdHealthy checks an etcd /health endpoint: 200 and {"health":"true"} (the member sees a
// leader).
func etcdHealthy(ctx context.Context, hc *http.Client, url string) error {
	resp, body, err := httpGet(ctx, hc, url)
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Health != "true" {
		return fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
