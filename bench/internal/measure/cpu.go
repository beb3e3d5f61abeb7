// Package measure holds what Holdfast's benchmark programs share: exact latency
// percentiles from kept samples, and which process used how much CPU during a scenario.
package measure

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times; 100 on every Linux we run on.
const clockTicks = 100

// CPUMeter splits the CPU a scenario used between the server (one process, or every
// process of a deployment), this load generator and everything else on the machine: on a
// shared 2-core box, "everything else" is what makes a run untrustworthy, so the table
// shows it.
type CPUMeter struct {
	serverPids            []int
	at                    time.Time
	server, self, machine float64 // CPU seconds at start
}

func NewCPUMeter(serverPids ...int) *CPUMeter {
	m := &CPUMeter{serverPids: serverPids, at: time.Now()}
	m.server, m.self = m.serverCPU(), SelfCPU()
	m.machine = machineCPU()
	return m
}

func (m *CPUMeter) serverCPU() float64 {
	var s float64
	for _, pid := range m.serverPids {
		s += ProcCPU(pid)
	}
	return s
}

// String reports the cores each used on average since the meter started.
func (m *CPUMeter) String() string {
	wall := time.Since(m.at).Seconds()
	server := (m.serverCPU() - m.server) / wall
	self := (SelfCPU() - m.self) / wall
	total := (machineCPU() - m.machine) / wall
	if len(m.serverPids) == 1 && m.serverPids[0] == os.Getpid() {
		return fmt.Sprintf("cores: this process %.2f, other %.2f", self, max(total-self, 0))
	}
	other := max(total-server-self, 0)
	return fmt.Sprintf("cores: server %.2f, load generator %.2f, other %.2f", server, self, other)
}

// ProcCPU is the user+system CPU seconds of process pid, or 0 when unreadable.
func ProcCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

// SelfCPU is the user+system CPU seconds of this process.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// machineCPU is the busy CPU seconds of the whole machine, from /proc/stat.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var busy float64
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i == 8 || i == 9 {
			continue // idle and iowait; guest time is already counted in user
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks
}

// WaitQuiet waits, up to limit, for a second in which the rest of the machine uses less
// than 0.25 cores, so that a scenario does not start in the middle of someone else's
// build. It says so on stderr when the machine stays busy; the table's "other" shows it.
func WaitQuiet(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		before := machineCPU()
		time.Sleep(time.Second)
		busy := machineCPU() - before
		if busy < 0.25 {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "  the machine is still busy (%.2f cores); measuring anyway\n", busy)
			return
		}
	}
}

// RSS is the resident set size (VmRSS) of process pid in bytes, from /proc/<pid>/status.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Syscalls is the number of read and write system calls process pid has made (syscr
// and syscw of /proc/<pid>/io), or zeros when unreadable: what a server's writer coalesces
// shows up as fewer writes per delivery.
func Syscalls(pid int) (reads, writes int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}
