// etcd-go-bench: a load generator built on etcd's own Go client (clientv3
// 3.4, from Debian's golang-etcd-server-dev), the independent referee for
// etc-bench: the same workloads, flags and JSON line, so that a figure
// measured against etc and etcd does not depend on etc's C++ client.
//
//	etcd-go-bench --endpoints=127.0.0.1:2379 --workload=put --clients=64 --connections=8 --total=100000
//	etcd-go-bench --workload=range --consistency=s --fill=false --duration=10s
//	etcd-go-bench --workload=watch --watchers=100 --total=5000
//
// Workloads (as etc-bench's): put (a put of --value-size bytes under a
// random key of --key-size digits among --key-space), range (a get of one
// such key, linearizable or --consistency=s serializable; --fill=true puts
// the first 10,000 keys first), txn (compare-and-put on one key: if its
// mod revision > -1, put, else put), watch (--watchers watches on one key
// across the connections; each put carries its send time, and the
// watchers measure delivery of every event). Each client is a goroutine
// with one request in flight, on connection (client mod --connections);
// each connection is a clientv3.Client of its own, to the endpoints in
// turn (--target=leader: only the leader's).
//
// Output: a summary, then one JSON line starting with {"workload": with
// the fields etc-bench prints (tools/bench-vs-etcd.sh reads either).
// Built by tools/etcd-go-bench.sh (offline: GOPATH mode over Debian's Go
// sources).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"
)

const watchedKey = "/bench/watched"

type options struct {
	endpoints   []string
	workload    string
	clients     int
	connections int
	total       int64
	duration    time.Duration
	keySize     int
	valueSize   int
	keySpace    int64
	consistency string
	target      string
	fill        bool
	watchers    int
}

// A client's record: latencies of what succeeded, and what failed.
type result struct {
	latenciesUs []int64
	errors      int64
	errorKinds  map[string]int64
}

func (r *result) record(start time.Time, err error) {
	if err == nil {
		r.latenciesUs = append(r.latenciesUs, time.Since(start).Microseconds())
		return
	}
	r.errors++
	if r.errorKinds == nil {
		r.errorKinds = map[string]int64{}
	}
	r.errorKinds[err.Error()]++
}

func parse() (options, error) {
	var o options
	var endpoints string
	flag.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated host:port list")
	flag.StringVar(&o.workload, "workload", "put", "put, range, txn or watch")
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients, one request in flight each")
	flag.IntVar(&o.connections, "connections", 4, "clientv3 clients (gRPC connections) the clients share")
	flag.Int64Var(&o.total, "total", 10000, "requests in all (watch: puts)")
	flag.DurationVar(&o.duration, "duration", 0, "run this long instead of --total")
	flag.IntVar(&o.keySize, "key-size", 8, "key length in digits")
	flag.IntVar(&o.valueSize, "value-size", 256, "value length in bytes")
	flag.Int64Var(&o.keySpace, "key-space", 100000, "distinct keys")
	flag.StringVar(&o.consistency, "consistency", "l", "range: l (linearizable) or s (serializable)")
	flag.StringVar(&o.target, "target", "all", "all endpoints, or the leader's")
	flag.BoolVar(&o.fill, "fill", true, "range: put the keys read first")
	flag.IntVar(&o.watchers, "watchers", 100, "watch: watches on the written key")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e != "" {
			o.endpoints = append(o.endpoints, e)
		}
	}
	switch {
	case len(o.endpoints) == 0:
		return o, fmt.Errorf("--endpoints: at least one")
	case o.workload != "put" && o.workload != "range" && o.workload != "txn" && o.workload != "watch":
		return o, fmt.Errorf("--workload: one of put, range, txn, watch")
	case o.clients < 1 || o.connections < 1 || o.keySize < 1 || o.keySpace < 1 || o.valueSize < 0:
		return o, fmt.Errorf("--clients, --connections, --key-size and --key-space must be >= 1")
	case o.total < 1 && o.duration <= 0:
		return o, fmt.Errorf("--total must be >= 1 (or give --duration)")
	case o.consistency != "l" && o.consistency != "s":
		return o, fmt.Errorf("--consistency: l or s")
	case o.target != "all" && o.target != "leader":
		return o, fmt.Errorf("--target: all or leader")
	case o.workload == "watch" && o.watchers < 1:
		return o, fmt.Errorf("--watchers must be >= 1")
	}
	return o, nil
}

// The key of number n, as etc-bench writes it: n mod the key space, in
// --key-size digits (the last ones, if n has more).
func key(o options, n int64) string {
	k := fmt.Sprintf("%0*d", o.keySize, n%o.keySpace)
	if len(k) > o.keySize {
		k = k[len(k)-o.keySize:]
	}
	return k
}

// clientv3's own log: errors only.
var quiet = zap.Config{
	Level:            zap.NewAtomicLevelAt(zap.ErrorLevel),
	Encoding:         "json",
	EncoderConfig:    zap.NewProductionEncoderConfig(),
	OutputPaths:      []string{"stderr"},
	ErrorOutputPaths: []string{"stderr"},
}

func connect(endpoint string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:          []string{endpoint},
		DialTimeout:        5 * time.Second,
		MaxCallRecvMsgSize: 64 << 20,
		LogConfig:          &quiet,
	})
}

// The endpoints the workload goes to.
func targets(o options) ([]string, error) {
	if o.target != "leader" {
		return o.endpoints, nil
	}
	for _, endpoint := range o.endpoints {
		c, err := connect(endpoint)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		status, err := c.Status(ctx, endpoint)
		cancel()
		c.Close()
		if err == nil && status.Leader == status.Header.MemberId {
			return []string{endpoint}, nil
		}
	}
	return nil, fmt.Errorf("no endpoint says it leads")
}

// Hands out request numbers until --total are issued, or until --duration.
func budget(o options) func() (int64, bool) {
	var issued int64
	if o.duration > 0 {
		deadline := time.Now().Add(o.duration)
		return func() (int64, bool) {
			return atomic.AddInt64(&issued, 1) - 1, time.Now().Before(deadline)
		}
	}
	return func() (int64, bool) {
		n := atomic.AddInt64(&issued, 1) - 1
		return n, n < o.total
	}
}

func percentileMs(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)))
	if i > len(sorted)-1 {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1000
}

func report(o options, results []*result, seconds float64) {
	var all []int64
	var errors int64
	kinds := map[string]int64{}
	for _, r := range results {
		all = append(all, r.latenciesUs...)
		errors += r.errors
		for k, v := range r.errorKinds {
			kinds[k] += v
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	throughput := 0.0
	if seconds > 0 {
		throughput = float64(len(all)) / seconds
	}
	maxMs := 0.0
	if len(all) > 0 {
		maxMs = float64(all[len(all)-1]) / 1000
	}
	p := func(q float64) float64 { return percentileMs(all, q) }
	fmt.Printf("workload     %s (%d clients, %d connections, target %s; etcd's Go client)\n",
		o.workload, o.clients, o.connections, o.target)
	fmt.Printf("requests     %d ok, %d errors in %.2f s\n", len(all), errors, seconds)
	fmt.Printf("throughput   %.0f /s\n", throughput)
	fmt.Printf("latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
		p(50), p(90), p(99), p(99.9), maxMs)
	for k, v := range kinds {
		fmt.Printf("error        %d x %s\n", v, k)
	}
	fmt.Printf("{\"workload\":%q,\"clients\":%d,\"connections\":%d,\"target\":%q,\"consistency\":%q,"+
		"\"value_size\":%d,\"ok\":%d,\"errors\":%d,\"seconds\":%.3f,\"throughput\":%.1f,"+
		"\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"+
		"\"load_generator\":\"etcd-go-bench\"}\n",
		o.workload, o.clients, o.connections, o.target, o.consistency, o.valueSize, len(all), errors,
		seconds, throughput, p(50), p(90), p(99), p(99.9), maxMs)
}

// The watches of the watch workload: each records the delivery latency of
// every event (now minus the send time its value starts with).
type watchers struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	delivered result
}

func openWatchers(count int, conns []*clientv3.Client) (*watchers, error) {
	w := &watchers{}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	created := make(chan error, count)
	for i := 0; i < count; i++ {
		c := conns[i%len(conns)]
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			// A watch created ahead of the first put (clientv3 sends the
			// create request when Watch is called; RequestProgress then
			// waits behind it on the same stream).
			ch := c.Watch(clientv3.WithRequireLeader(ctx), watchedKey, clientv3.WithCreatedNotify())
			first := true
			var local []int64
			defer func() {
				w.mu.Lock()
				w.delivered.latenciesUs = append(w.delivered.latenciesUs, local...)
				w.mu.Unlock()
			}()
			for response := range ch {
				if first {
					first = false
					created <- response.Err()
				}
				now := time.Now().UnixNano() / 1000
				for _, event := range response.Events {
					if len(event.Kv.Value) < 16 {
						continue
					}
					sent, err := strconv.ParseInt(string(event.Kv.Value[:16]), 10, 64)
					if err == nil {
						local = append(local, now-sent)
					}
				}
			}
		}()
	}
	for i := 0; i < count; i++ {
		select {
		case err := <-created:
			if err != nil {
				return nil, fmt.Errorf("watch not created: %v", err)
			}
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("watches not created within 10 s")
		}
	}
	return w, nil
}

// Stops the watches once the last event could have arrived, and returns
// what they received.
func (w *watchers) stop() *result {
	time.Sleep(500 * time.Millisecond)
	w.cancel()
	w.wg.Wait()
	return &w.delivered
}

func run() int {
	o, err := parse()
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-go-bench: %v\n", err)
		return 2
	}
	// clientv3's balancer logs every reconnect at info level.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
	to, err := targets(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-go-bench: %v\n", err)
		return 1
	}
	conns := make([]*clientv3.Client, o.connections)
	for i := range conns {
		conns[i], err = connect(to[i%len(to)])
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd-go-bench: cannot connect: %v\n", err)
			return 1
		}
		defer conns[i].Close()
	}
	value := strings.Repeat("v", o.valueSize)
	if o.fill && o.workload == "range" {
		fill := o.keySpace
		if fill > 10000 {
			fill = 10000
		}
		for n := int64(0); n < fill; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = conns[0].Put(ctx, key(o, n), value)
			cancel()
		}
	}
	var w *watchers
	if o.workload == "watch" {
		if w, err = openWatchers(o.watchers, conns); err != nil {
			fmt.Fprintf(os.Stderr, "etcd-go-bench: %v\n", err)
			return 1
		}
	}
	more := budget(o)
	results := make([]*result, o.clients)
	var wg sync.WaitGroup
	started := time.Now()
	for i := 0; i < o.clients; i++ {
		results[i] = &result{}
		wg.Add(1)
		go func(r *result, c *clientv3.Client, seed int64) {
			defer wg.Done()
			random := uint64(seed)*0x9E3779B97F4A7C15 + 1
			var err error
			for {
				_, ok := more()
				if !ok {
					return
				}
				// xorshift: a random key per request, as etc-bench's.
				random ^= random << 13
				random ^= random >> 7
				random ^= random << 17
				k := key(o, int64(random%uint64(o.keySpace)))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				switch o.workload {
				case "put":
					_, err = c.Put(ctx, k, value)
					r.record(start, err)
				case "range":
					var opts []clientv3.OpOption
					if o.consistency == "s" {
						opts = append(opts, clientv3.WithSerializable())
					}
					_, err = c.Get(ctx, k, opts...)
					r.record(start, err)
				case "txn":
					_, err = c.Txn(ctx).
						If(clientv3.Compare(clientv3.ModRevision(k), ">", -1)).
						Then(clientv3.OpPut(k, value)).
						Else(clientv3.OpPut(k, value)).
						Commit()
					r.record(start, err)
				case "watch":
					// The send time travels in the value; the put itself counts
					// only if it fails.
					_, err = c.Put(ctx, watchedKey, fmt.Sprintf("%016d", start.UnixNano()/1000)+value)
					if err != nil {
						r.record(start, err)
					}
				}
				cancel()
			}
		}(results[i], conns[i%len(conns)], int64(i))
	}
	wg.Wait()
	seconds := time.Since(started).Seconds()
	if w != nil {
		delivered := w.stop()
		for _, r := range results {
			delivered.errors += r.errors
		}
		results = []*result{delivered}
	}
	report(o, results, seconds)
	return 0
}

func main() { os.Exit(run()) }
