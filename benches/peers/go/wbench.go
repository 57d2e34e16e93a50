// The `wippy bench` patterns in Go (goroutines and channels), the second peer in
// benches/compare.sh. Based on /work/shared/anchors/go/gobench.go (spawn, pingpong, ring,
// fanin are the same programs), extended with call, idle and latency, with the same count
// checks as the wippy bench app, printing one JSON line with the fields of
// `wippy bench --json`.
//
//	GO111MODULE=off go build -o gowbench wbench.go
//	GOMAXPROCS=2 ./gowbench PATTERN [key=value ...]
//
// Sizes and defaults as in wippy bench; latency takes duration_ms. Exit status 1 when a
// count check fails (message on stderr) or on bad arguments.
//
// Mapping: a process is a goroutine; its mailbox is a channel (unbuffered where the pattern
// hands one message over at a time, buffered 1024 for the fan-in receiver and the latency
// receivers, as a Go programmer would write them); `call` is a request with a reply channel
// to a server goroutine.
package main

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var epoch = time.Now()

func nowNs() int64 { return int64(time.Since(epoch)) }

type check struct {
	what      string
	got, want int64
}

type result struct {
	ops     int64
	ns      int64
	params  map[string]any
	counts  [][2]any
	lat     *hist
	perProc *float64
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: gowbench PATTERN [key=value ...]")
	}
	opts := map[string]int64{}
	for _, a := range os.Args[2:] {
		k, v, ok := strings.Cut(a, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			fail("bad size " + a)
		}
		opts[k] = n
	}
	opt := func(k string, d int64) int64 {
		if v, ok := opts[k]; ok {
			return v
		}
		return d
	}
	var r result
	var checks []check
	pattern := os.Args[1]
	resetPeak()
	switch pattern {
	case "spawn":
		r, checks = spawn(opt("procs", 100000))
	case "pingpong":
		r, checks = pingpong(opt("messages", 1000000))
	case "ring":
		r, checks = ring(opt("procs", 10000), opt("laps", 100))
	case "fanin":
		r, checks = fanin(opt("senders", 1000), opt("messages", 1000))
	case "call":
		r, checks = call(opt("messages", 100000))
	case "idle":
		r, checks = idle(opt("procs", 50000))
	case "latency":
		r, checks = latency(opt("rate", 100000), opt("duration_ms", 5000), opt("receivers", 16),
			opt("hogs", int64(2*runtime.GOMAXPROCS(0))), opt("work", 1000000))
	default:
		fail("unknown pattern " + pattern)
	}
	for _, c := range checks {
		if c.got != c.want {
			fail(fmt.Sprintf("%s: %s = %d, expected %d", pattern, c.what, c.got, c.want))
		}
	}
	secs := float64(r.ns) / 1e9
	out := map[string]any{
		"pattern": pattern, "run": 1, "peer": "go", "go": runtime.Version(),
		"workers": runtime.GOMAXPROCS(0), "ops": r.ops, "seconds": secs,
		"ns_per_op": float64(r.ns) / float64(imax(r.ops, 1)), "ops_per_sec": float64(r.ops) / secs,
		"p50_ns": nil, "p99_ns": nil, "p999_ns": nil, "max_ns": nil,
		"rss_bytes": status("VmHWM:"), "bytes_per_process": nil, "params": r.params,
	}
	if r.lat != nil {
		out["p50_ns"], out["p99_ns"] = r.lat.pct(0.50), r.lat.pct(0.99)
		out["p999_ns"], out["max_ns"] = r.lat.pct(0.999), r.lat.pct(1)
	}
	if r.perProc != nil {
		out["bytes_per_process"] = *r.perProc
	}
	counts := map[string]any{}
	for _, kv := range r.counts {
		counts[kv[0].(string)] = kv[1]
	}
	out["counts"] = counts
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// imax and imin: the min/max builtins need Go 1.21; Debian bookworm ships 1.19.
func imax(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func imin(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "gowbench:", msg)
	os.Exit(1)
}

// ---------------------------------------------------------------- patterns

func spawn(n int64) (result, []check) {
	done := make(chan struct{}, 1024)
	t0 := nowNs()
	for i := int64(0); i < n; i++ {
		go func() { done <- struct{}{} }()
	}
	var got int64
	for got < n {
		<-done
		got++
	}
	t1 := nowNs()
	return result{ops: n, ns: t1 - t0, params: map[string]any{"procs": n},
			counts: [][2]any{{"done", got}}},
		[]check{{"done messages", got, n}}
}

func pingpong(m int64) (result, []check) {
	ping, pong := make(chan struct{}), make(chan struct{})
	count := make(chan int64)
	go func() {
		var n int64
		for range ping {
			n++
			pong <- struct{}{}
		}
		count <- n
	}()
	var pongs int64
	t0 := nowNs()
	for i := int64(0); i < m; i++ {
		ping <- struct{}{}
		<-pong
		pongs++
	}
	t1 := nowNs()
	close(ping)
	pings := <-count
	return result{ops: m, ns: t1 - t0, params: map[string]any{"messages": m},
			counts: [][2]any{{"pongs", pongs}, {"pings", pings}}},
		[]check{{"pongs received", pongs, m}, {"pings seen by pong", pings, m}}
}

type totals struct{ sum, min, max, nodes int64 }

type token struct {
	lap  int64
	stop *totals
}

func ring(k, laps int64) (result, []check) {
	chans := make([]chan token, k)
	for i := range chans {
		chans[i] = make(chan token)
	}
	// chans[0] is the driver's; node i receives on chans[i] and sends to chans[(i+1)%k].
	for i := int64(1); i < k; i++ {
		in, next := chans[i], chans[(i+1)%k]
		go func() {
			var n int64
			for t := range in {
				if t.stop != nil {
					s := *t.stop
					if s.min < 0 || n < s.min {
						s.min = n
					}
					s.max = imax(s.max, n)
					s.sum += n
					s.nodes++
					next <- token{stop: &s}
					return
				}
				n++
				next <- t
			}
		}()
	}
	var ok int64
	t0 := nowNs()
	for lap := int64(1); lap <= laps; lap++ {
		chans[1%k] <- token{lap: lap}
		if t := <-chans[0]; t.lap == lap {
			ok++
		}
	}
	t1 := nowNs()
	chans[1%k] <- token{stop: &totals{min: -1}}
	s := *(<-chans[0]).stop
	return result{ops: k * laps, ns: t1 - t0, params: map[string]any{"procs": k, "laps": laps},
			counts: [][2]any{{"laps", ok}, {"nodes", s.nodes}, {"forwarded", s.sum},
				{"min_forwarded", s.min}, {"max_forwarded", s.max}}},
		[]check{{"laps completed", ok, laps}, {"nodes reporting", s.nodes, k - 1},
			{"tokens forwarded by nodes", s.sum, (k - 1) * laps},
			{"fewest forwards by a node", s.min, laps}, {"most forwards by a node", s.max, laps}}
}

func fanin(s, m int64) (result, []check) {
	ch := make(chan uint64, 1024)
	expect := make([]int64, s+1)
	for i := range expect {
		expect[i] = 1
	}
	total := s * m
	t0 := nowNs()
	for i := int64(1); i <= s; i++ {
		base := uint64(i) << 32
		go func() {
			for seq := int64(1); seq <= m; seq++ {
				ch <- base | uint64(seq)
			}
		}()
	}
	var bad int64
	for n := int64(0); n < total; n++ {
		v := <-ch
		from, seq := int64(v>>32), int64(v&0xffffffff)
		if expect[from] == seq {
			expect[from] = seq + 1
		} else {
			bad++
		}
	}
	t1 := nowNs()
	var complete int64
	for i := int64(1); i <= s; i++ {
		if expect[i] == m+1 {
			complete++
		}
	}
	return result{ops: total, ns: t1 - t0, params: map[string]any{"senders": s, "messages": m},
			counts: [][2]any{{"received", total}, {"out_of_order", bad}, {"complete_senders", complete}}},
		[]check{{"messages out of order or duplicated", bad, 0}, {"complete senders", complete, s}}
}

type req struct {
	x     int64
	reply chan int64
}

func call(m int64) (result, []check) {
	server := make(chan req)
	go func() {
		for r := range server {
			r.reply <- r.x + 1
		}
	}()
	var ok int64
	t0 := nowNs()
	for i := int64(1); i <= m; i++ {
		reply := make(chan int64, 1)
		server <- req{i, reply}
		if <-reply == i+1 {
			ok++
		}
	}
	t1 := nowNs()
	close(server)
	return result{ops: m, ns: t1 - t0, params: map[string]any{"messages": m},
			counts: [][2]any{{"ok", ok}, {"wrong", m - ok}, {"failed", 0}}},
		[]check{{"calls returning the right value", ok, m}}
}

func idle(p int64) (result, []check) {
	runtime.GC()
	up, ack := make(chan struct{}, 1024), make(chan struct{}, 1024)
	base := status("VmRSS:")
	t0 := nowNs()
	// A chain, as in the wippy app: each goroutine knows the one started before it.
	var prev chan struct{}
	for i := int64(0); i < p; i++ {
		mine, before := make(chan struct{}), prev
		go func() {
			up <- struct{}{}
			<-mine
			if before != nil {
				before <- struct{}{}
			}
			ack <- struct{}{}
		}()
		prev = mine
	}
	var ups int64
	for ups < p {
		<-up
		ups++
	}
	t1 := nowNs()
	full := status("VmRSS:")
	prev <- struct{}{}
	var acks int64
	for acks < p {
		<-ack
		acks++
	}
	per := float64(full-base) / float64(p)
	return result{ops: p, ns: t1 - t0, params: map[string]any{"procs": p}, perProc: &per,
			counts: [][2]any{{"up", ups}, {"acks", acks}, {"rss_base", base}, {"rss_full", full}}},
		[]check{{"processes parked", ups, p}, {"processes stopped", acks, p}}
}

// latency: an open-loop load (message i due at start + i/rate, stamped with that time) from
// a generator goroutine to `receivers` goroutines, with `hogs` CPU-heavy goroutines running.
// Go preempts a running goroutine asynchronously after 10 ms, like wippy's default slice.
func latency(rate, durMs, k, hogs, work int64) (result, []check) {
	var stop atomic.Bool
	rounds := make([]int64, hogs)
	var hw sync.WaitGroup
	for i := int64(0); i < hogs; i++ {
		hw.Add(1)
		go func(i int64) {
			defer hw.Done()
			var acc int64
			for !stop.Load() {
				acc = hogWork(i%3, work, acc)
				rounds[i]++
			}
		}(i)
	}
	h, lag := newHist(), newHist()
	var mu sync.Mutex
	recv := make([]chan int64, k)
	seen := make([]int64, k)
	var rw sync.WaitGroup
	for i := range recv {
		recv[i] = make(chan int64, 1024)
		rw.Add(1)
		go func(i int) {
			defer rw.Done()
			for due := range recv[i] {
				d := nowNs() - due
				mu.Lock()
				h.add(d)
				mu.Unlock()
				seen[i]++
			}
		}(i)
	}
	time.Sleep(200 * time.Millisecond)
	total := rate * durMs / 1000
	interval := 1e9 / float64(rate)
	start := nowNs() + 1_000_000
	var last int64
	for i := int64(0); i < total; i++ {
		due := start + int64(float64(i)*interval)
		now := nowNs()
		if now < due {
			time.Sleep(time.Duration(due - now))
			now = nowNs()
		}
		recv[i%k] <- due
		lag.add(now - due)
		last = now
	}
	for _, c := range recv {
		close(c)
	}
	rw.Wait()
	stop.Store(true)
	hw.Wait()
	var got, idleHogs, rsum int64
	for _, s := range seen {
		got += s
	}
	for _, r := range rounds {
		rsum += r
		if r < 1 {
			idleHogs++
		}
	}
	secs := float64(last-start) / 1e9
	return result{ops: total, ns: last - start, lat: h,
			params: map[string]any{"rate": rate, "duration": float64(durMs) / 1000, "receivers": k, "hogs": hogs, "work": work},
			counts: [][2]any{{"sent", total}, {"received", got}, {"achieved_rate", float64(total) / secs},
				{"sender_lag_p99_ns", lag.pct(0.99)}, {"sender_lag_max_ns", lag.pct(1)},
				{"hogs", hogs}, {"hog_rounds", rsum}}},
		[]check{{"messages received", got, total}, {"latency samples", h.n, total},
			{"background goroutines without a round", idleHogs, 0}}
}

var sink []any

func hogWork(kind, work, acc int64) int64 {
	switch kind {
	case 1: // small allocations (GC pressure)
		keep := make([]any, 64)
		for i := int64(0); i < work/8; i++ {
			t := &[3]int64{i, i + 1, i}
			keep[i&63] = t
			acc += 3
		}
		sink = keep
	case 2: // strings
		for i := int64(0); i < work/16; i++ {
			s := "k" + strconv.FormatInt(i, 10) + ":" + strconv.FormatInt(acc, 10)
			acc += int64(len(s))
		}
	default: // integer arithmetic
		for i := int64(0); i < work; i++ {
			acc = (acc*1103515245 + 12345 + i) & 0x7fffffff
		}
	}
	return acc
}

// ---------------------------------------------------------------- histogram, memory

// hist is log-linear: values below 128 ns have their own bucket; above, each power of two is
// split into 128 buckets (relative error < 0.8%), as in the Erlang peer.
type hist struct {
	b []int64
	n int64
}

func newHist() *hist { return &hist{b: make([]int64, 128+(42-7+1)*128)} }

func (h *hist) add(v int64) {
	h.n++
	if v < 128 {
		h.b[imax(v, 0)]++
		return
	}
	e := imin(int64(63-bits.LeadingZeros64(uint64(v))), 42)
	sub := imin((v>>(e-7))-128, 127)
	h.b[128+(e-7)*128+sub]++
}

func (h *hist) pct(q float64) any {
	if h.n == 0 {
		return nil
	}
	want := imax(int64(1), int64(q*float64(h.n)+0.999999))
	var acc int64
	for i, c := range h.b {
		acc += c
		if acc >= want {
			if i < 128 {
				return int64(i)
			}
			j := int64(i - 128)
			e := j/128 + 7
			return ((128 + j%128) << (e - 7)) + (int64(1)<<(e-7))/2
		}
	}
	return nil
}

// status reads a VmXXX line of /proc/self/status in bytes.
func status(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l[len(key):])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

func resetPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
