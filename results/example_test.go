package results_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/results"
)

func ExampleReader_Follow() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	r := results.NewReader(rdb, results.DefaultStream)
	defer r.Close()

	// Print every result from now on, each field as stored, until ctx ends.
	err := r.Follow(context.Background(), "$", func(ctx context.Context, e results.Entry) error {
		fmt.Println(e.TaskID, e.Status, e.Fields)
		return nil
	})
	log.Println(err)
}

func ExampleTrim() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	// Keep a week and at most a million results, but nothing a consumer
	// group has not acknowledged yet, unless it is a month old.
	n, err := results.Trim(context.Background(), rdb, results.DefaultStream, results.Retention{
		MaxLen: 1_000_000, MaxAge: 7 * 24 * time.Hour, MaxUnackedAge: 30 * 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trimmed", n)
}
