package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/simulator"
)

// TestSentinelFailover runs a worker and the enqueue CLI against
// redis-sentinel://, promotes the replica with SENTINEL FAILOVER under
// load, and checks that work continues on the new master: the worker
// stays up and ready, tasks enqueued before, during and after the switch
// end with exactly one result, and the CLI enqueues through Sentinel.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	master := redistest.StartServer(t)
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	sentinelAddr := redistest.StartSentinel(t, master,
		"sentinel down-after-milliseconds mymaster 1000", "sentinel failover-timeout mymaster 10000")
	ctx := context.Background()
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr})
	defer sentinel.Close()
	poll.Until(t, 30*time.Second, "Sentinel to see the replica", func() bool {
		rs, err := sentinel.Replicas(ctx, "mymaster").Result()
		return err == nil && len(rs) == 1 && rs[0]["master-link-status"] == "ok"
	})

	url := "redis-sentinel://" + sentinelAddr + "?master=mymaster"
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{sentinelAddr}})
	s := stackOnRedis(t, url, rdb, simulator.Options{Latency: 100 * time.Millisecond})
	w := s.StartWorker(map[string]string{"WORKER_CONCURRENCY": "4"})
	var ids []string
	for i := range 3 {
		ids = append(ids, s.MustEnqueue("hooked", "--account", fmt.Sprintf("before-%d", i)))
	}
	s.waitEachResult(ids, 60*time.Second)

	p := s.startProducer("failover", 50*time.Millisecond)
	time.Sleep(2 * time.Second)
	// Let the replica catch up, so the switch loses no write acknowledged
	// before it.
	replicated := p.Count()
	if n, err := rdb.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT before the failover: %d replicas, %v", n, err)
	}
	if err := sentinel.Failover(ctx, "mymaster").Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	failedOverAt := time.Now()
	want := strconv.Itoa(replica.Port)
	poll.Until(t, 30*time.Second, "the replica to become master", func() bool {
		addr, err := sentinel.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && len(addr) == 2 && addr[1] == want
	})
	// Until Sentinel turns the old master into a replica, it still takes
	// writes that the new master never sees: Redis replication is
	// asynchronous, so what is acknowledged there in that window (about a
	// second) is lost. Those tasks may have no result; all others must.
	old := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer old.Close()
	poll.Until(t, 30*time.Second, "the old master to be demoted", func() bool {
		role, err := old.Do(ctx, "ROLE").Slice()
		return err == nil && len(role) > 0 && role[0] == "slave"
	})
	time.Sleep(500 * time.Millisecond) // acks already on their way from the old master
	demoted := p.Count()
	poll.Until(t, 30*time.Second, "enqueues to go through after the failover", func() bool { return p.Count() > demoted+10 })
	t.Logf("old master demoted %s after SENTINEL FAILOVER; enqueues flow on the new master", time.Since(failedOverAt).Round(time.Millisecond))
	for i := range 3 {
		ids = append(ids, s.MustEnqueue("hooked", "--account", fmt.Sprintf("after-%d", i)))
	}
	acked, doubt := p.Stop()
	must := append(append(ids, acked[:replicated]...), acked[demoted:]...)
	may := append(append([]string{}, acked[replicated:demoted]...), doubt...)
	// A task that was active on the old master when it failed over may
	// need asynq's recoverer (lease 30 s, cutoff 30 s, every minute).
	s.waitEachResult(must, 180*time.Second)
	all := s.Results()
	checkExactlyOnce(t, all, must, may)
	lost := 0
	for _, id := range acked[replicated:demoted] {
		if len(ResultFor(all, id)) == 0 {
			lost++
		}
	}
	t.Logf("%d tasks through the failover; of %d acknowledged during the switch, %d were lost with the old master's writes; %d enqueues failed", len(acked), demoted-replicated, lost, len(doubt))
	if !w.Alive() {
		t.Fatal("the worker exited during the failover")
	}
	if code, body := w.Get("/readyz"); code != 200 {
		t.Errorf("/readyz after the failover: %d %s", code, body)
	}
	// The writes went to the new master.
	if role, _ := redis.NewClient(&redis.Options{Addr: replica.Addr()}).Do(ctx, "ROLE").Slice(); len(role) == 0 || role[0] != "master" {
		t.Errorf("replica role after the failover: %v", role)
	}
}
