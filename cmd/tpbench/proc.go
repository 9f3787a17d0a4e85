package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a measured subprocess: its resident memory is sampled while it runs, and its CPU
// time can be read at any moment from /proc.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu      sync.Mutex
	samples []int64 // VmRSS in KiB, every 250 ms
	hwmKB   int64   // VmHWM (peak RSS) at the last sample
	stop    chan struct{}
}

func startProc(bin string, args, env []string, logPath string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	go p.sample()
	return p, nil
}

func (p *proc) sample() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			rss, hwm := p.memKB()
			if rss > 0 {
				p.mu.Lock()
				p.samples = append(p.samples, rss)
				p.hwmKB = max(p.hwmKB, hwm)
				p.mu.Unlock()
			}
		case <-p.done:
			return
		case <-p.stop:
			return
		}
	}
}

// mark returns how many RSS samples exist now, to slice a phase out of them later.
func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.samples)
}

func (p *proc) samplesBetween(from, to int) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	to = min(to, len(p.samples))
	return append([]int64(nil), p.samples[min(from, to):to]...)
}

// memKB reads the process's current and peak resident set size (VmRSS, VmHWM) in KiB.
func (p *proc) memKB() (rss, hwm int64) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

// cpu is the process's user+system CPU time so far.
func (p *proc) cpu() time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which may contain spaces, start after the last ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// terminate stops the process with SIGTERM (it drains and commits) and returns its peak RSS in
// KiB (VmHWM). Not ru_maxrss: a child started with vfork is charged the parent's RSS until exec,
// which here would report the harness's own memory.
func (p *proc) terminate(timeout time.Duration) (peakKB int64, err error) {
	if _, hwm := p.memKB(); hwm > 0 {
		p.mu.Lock()
		p.hwmKB = max(p.hwmKB, hwm)
		p.mu.Unlock()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hwmKB, p.err
}
