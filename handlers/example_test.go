package handlers_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/tasks"
)

// An asynq user mounts refreshq's handlers on their own ServeMux, next to
// their own task types, with the same guarantees as refreshq's worker: the
// fleet's budgets, the retry ledger, and exactly one result per task.
func Example_mount() {
	// Your Redis (miniredis here) and hooked.so (a stand-in here).
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"success":true,"data":{"account":{"id":"acct-1"}}}`)
	}))
	defer upstream.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	// 1. The refresh handler, from public settings only.
	refresh, err := handlers.New(handlers.Config{
		Redis: rdb,
		Providers: map[string]handlers.Provider{
			tasks.ProviderHooked: {APIKey: "hooked-api-key", BaseURL: upstream.URL, Rate: "10/1s"},
		},
		Queues: []string{"default"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer refresh.Close() // after the server has shut down

	// 2. Your ServeMux: your handlers and refreshq's.
	var sent sync.WaitGroup
	sent.Add(1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("email:send", func(ctx context.Context, t *asynq.Task) error {
		fmt.Printf("email:send ran with %s\n", t.Payload())
		sent.Done()
		return nil
	})
	refresh.Register(mux)

	// 3. Your server's Config, with what refreshq's guarantees need filled in.
	cfg := asynq.Config{Queues: map[string]int{"default": 1}, LogLevel: asynq.FatalLevel}
	handlers.ConfigureServer(&cfg)
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	if err := srv.Start(mux); err != nil {
		log.Fatal(err)
	}

	// 4. The archive sweeper and state gauges, for as long as the server runs.
	ctx, stop := context.WithCancel(context.Background())
	var maintenance sync.WaitGroup
	maintenance.Go(func() { refresh.RunMaintenance(ctx) })

	// Producers enqueue as usual, and read the one result.
	producer, err := client.NewFromRedisClient(rdb, client.WithQueues("default"))
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("email:send", []byte(`"hello"`))); err != nil {
		log.Fatal(err)
	}
	id, err := producer.Enqueue(ctx, tasks.Hooked("acct-1"))
	if err != nil {
		log.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e, err := producer.Wait(waitCtx, id)
	if err != nil {
		log.Fatal(err)
	}
	sent.Wait()
	fmt.Println(e.TaskType, e.Subject, e.Status, e.HTTPStatus, e.Attempts, e.Result)

	srv.Shutdown()
	stop()
	maintenance.Wait()
	// Output:
	// email:send ran with "hello"
	// hooked:account_refresh acct-1 succeeded 200 1 {"success":true,"data":{"account":{"id":"acct-1"}}}
}
