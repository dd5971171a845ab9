// Package procgroup runs a test stand-in (cognito-local, maildev, Caddy)
// as the leader of its own process group, so that stopping it also stops
// whatever it started (node workers, chromium), and nothing outlives a test.
package procgroup

import (
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Group is a started process and its process group.
type Group struct {
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// Start starts cmd in a new process group and reaps it when it exits.
func Start(cmd *exec.Cmd) (*Group, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &Group{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(g.done) }() // State tells how it ended
	return g, nil
}

// Done is closed once the process has exited.
func (g *Group) Done() <-chan struct{} { return g.done }

// State describes how the process exited (e.g. "exit status 1"), once
// Done is closed.
func (g *Group) State() string { return g.cmd.ProcessState.String() }

// Stop sends sig to the whole group, and SIGKILL when it has not exited
// after grace; it returns once the process has exited. Later calls do
// nothing.
func (g *Group) Stop(sig syscall.Signal, grace time.Duration) {
	g.once.Do(func() {
		_ = syscall.Kill(-g.cmd.Process.Pid, sig) // the group may have exited already
		select {
		case <-g.done:
		case <-time.After(grace):
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL) // as above
			<-g.done
		}
	})
}
