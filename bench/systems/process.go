package systems

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a process gets to exit after its stop signal before it is killed.
const stopGrace = 15 * time.Second

// process is a child server process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// procSpec describes a process to start.
type procSpec struct {
	name    string
	path    string
	args    []string
	dir     string              // working directory
	logPath string              // stdout and stderr go here
	cred    *syscall.Credential // run as this user (only when we are root); nil keeps ours
	stopSig syscall.Signal      // graceful stop signal; 0 means SIGTERM
}

// startProcess starts s. The child gets its own process group (so a ^C at the terminal reaches
// only the benchmark, which then stops its children in order) and SIGKILL if the benchmark dies.
func startProcess(s procSpec) (*process, error) {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.path, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	fmt.Fprintf(logf, "### %s %s\n", s.path, strings.Join(s.args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &process{name: s.name, cmd: cmd, logPath: s.logPath, stopSig: s.stopSig, done: make(chan struct{})}
	if p.stopSig == 0 {
		p.stopSig = syscall.SIGTERM
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// runProcess runs s to completion and returns an error holding the tail of its log on failure.
func runProcess(s procSpec) error {
	p, err := startProcess(s)
	if err != nil {
		return err
	}
	<-p.done
	if p.waitErr != nil {
		return fmt.Errorf("%s: %w\n%s", s.name, p.waitErr, p.logTail(20))
	}
	return nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop sends the stop signal, waits up to stopGrace, then kills the process group.
func (p *process) stop() error {
	if done, _ := p.exited(); done {
		return nil
	}
	_ = p.cmd.Process.Signal(p.stopSig)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	// Kill the whole group: postgres backends, for instance, are the postmaster's children.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %v after %v; killed", p.name, stopGrace, p.stopSig)
}

// logTail returns the last n lines of the process's log.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + p.logPath + " (tail) ---\n" + string(bytes.Join(lines, []byte("\n")))
}

// errExited reports a process that ended while we waited for it to become ready.
func errExited(p *process, err error) error {
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited during startup: %w\n%s", p.name, err, p.logTail(30))
}
