package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

func ExampleNew() {
	// The queue names the workers' QUEUES lists.
	c, err := client.New("redis://127.0.0.1:6379", client.WithQueues("critical", "default", "low"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

func ExampleClient_Enqueue() {
	c, err := client.New("redis://127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	id, err := c.Enqueue(ctx, tasks.BundleSocial("team-42", "TIKTOK"),
		client.Queue("critical"),
		client.Unique(time.Hour), // skip if team-42/TIKTOK was enqueued in the last hour
		client.Meta(json.RawMessage(`{"request_id":"r-981"}`)),
	)
	var dup *client.DuplicateError
	switch {
	case errors.As(err, &dup):
		fmt.Println("already enqueued as", dup.ExistingTaskID)
	case errors.Is(err, client.ErrInDoubt):
		fmt.Println("Redis failed mid-call; check task", id)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("enqueued", id)
	}
}

func ExampleClient_EnqueueMany() {
	c, err := client.New("redis://127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	batch := []tasks.Refresh{
		tasks.Hooked("acct-1"),
		tasks.Hooked("acct-2"),
		tasks.BundleSocial("team-42", "INSTAGRAM"),
	}
	outcomes, err := c.EnqueueMany(context.Background(), batch, client.Queue("low"), client.Unique(24*time.Hour))
	var invalid *client.InvalidBatchError
	if errors.As(err, &invalid) {
		for _, inv := range invalid.Invalid {
			fmt.Printf("refresh %d: %v\n", inv.Index, inv.Err)
		}
		return
	}
	for _, o := range outcomes {
		fmt.Println(o.Index, o.State, o.TaskID)
	}
	if err != nil {
		log.Printf("stopped early: %v", err) // outcomes say which were enqueued
	}
}

func ExampleClient_Wait() {
	c, err := client.New("redis://127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	id, err := c.Enqueue(ctx, tasks.Hooked("acct-1"))
	if err != nil {
		log.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := c.Wait(wctx, id)
	if err != nil {
		log.Fatal(err) // context.DeadlineExceeded: no result within 2 minutes
	}
	if res.Succeeded() {
		fmt.Println(res.Result) // the upstream's JSON body
	} else {
		fmt.Println(res.ErrorKind, res.Error)
	}
}

func ExampleClient_Consume() {
	c, err := client.New("redis://127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Every replica runs this with its own consumer name; each result is
	// handled by one of them, at least once.
	err = c.Consume(context.Background(), "billing", "billing-1",
		func(ctx context.Context, e results.Entry) error {
			fmt.Println(e.TaskID, e.Status)
			return nil // acknowledged; an error leaves it pending
		},
		results.ConsumeOptions{From: "0", ClaimIdle: 5 * time.Minute})
	log.Println(err)
}
