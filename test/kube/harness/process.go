package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// process is a child process (etcd, kube-apiserver) whose output goes to a
// log file and a bounded in-memory tail.
type process struct {
	name    string
	cmd     *exec.Cmd
	logFile *os.File
	tail    *tailBuffer
	exited  chan struct{} // closed once the process has exited
	waitErr error         // valid once exited is closed
	stop    sync.Once
}

// spawner starts every child process from one goroutine locked to its OS
// thread for the life of the test binary. Children get
// Pdeathsig=SIGKILL, which the kernel delivers when the thread that forked
// them ends: with a thread that never ends, that is when the test binary
// ends — however it ends (a panic, a -timeout, ^C, SIGKILL), so no etcd or
// kube-apiserver outlives the tests.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// startProcess starts bin with args, its output appended to logPath.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &process{name: name, logFile: f, tail: &tailBuffer{max: 256 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	w := &multiWriter{a: f, b: p.tail}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(p.cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// running reports an error if the process has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.waitErr, p.tail.last(16<<10))
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace, then kills
// it. It is safe to call more than once.
func (p *process) Stop(grace time.Duration) {
	p.stop.Do(func() {
		select {
		case <-p.exited:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(grace):
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.exited
			}
		}
		p.logFile.Close()
	})
}

// freePort returns a loopback TCP port that was free a moment ago, for
// programs that cannot listen on port 0 and report the port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// last returns at most the last n bytes, starting at a line.
func (b *tailBuffer) last(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf
	if len(s) > n {
		s = s[len(s)-n:]
		if i := bytes.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return string(s)
}

// multiWriter writes to both writers, ignoring the second's errors.
type multiWriter struct {
	a *os.File
	b *tailBuffer
}

func (w *multiWriter) Write(p []byte) (int, error) {
	_, _ = w.b.Write(p)
	return w.a.Write(p)
}
