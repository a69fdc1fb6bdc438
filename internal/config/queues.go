package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/refreshq/refreshq/tasks"
)

// defaultWeights are the priority weights of tasks.DefaultQueues, in its
// order (highest priority first).
var defaultWeights = []int{6, 3, 1}

// DefaultQueues is QUEUES' default: tasks.DefaultQueues with their weights.
var DefaultQueues = func() string {
	names := tasks.DefaultQueues()
	if len(names) != len(defaultWeights) {
		panic(fmt.Sprintf("config: %d default queues, %d weights", len(names), len(defaultWeights)))
	}
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + "=" + strconv.Itoa(defaultWeights[i])
	}
	return strings.Join(parts, ",")
}()

// Queues are the queues a worker serves, with their priority weights, in
// the order they were written.
type Queues struct {
	names   []string
	weights map[string]int
}

// ParseQueues reads QUEUES: "name=weight,...", weights ≥ 1. Empty means
// DefaultQueues.
func ParseQueues(s string) (Queues, error) {
	if strings.TrimSpace(s) == "" {
		s = DefaultQueues
	}
	q := Queues{weights: map[string]int{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, w, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return Queues{}, fmt.Errorf("QUEUES: %q is not name=weight; write e.g. %s", part, DefaultQueues)
		}
		if err := tasks.CheckQueueName(name); err != nil {
			return Queues{}, fmt.Errorf("QUEUES: %w", err)
		}
		weight, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || weight < 1 {
			return Queues{}, fmt.Errorf("QUEUES: weight of %q is %q; use a whole number ≥ 1, e.g. %s", name, w, DefaultQueues)
		}
		if _, dup := q.weights[name]; dup {
			return Queues{}, fmt.Errorf("QUEUES: queue %q is listed twice", name)
		}
		q.names = append(q.names, name)
		q.weights[name] = weight
	}
	return q, nil
}

// Names returns the queue names in the order QUEUES lists them.
func (q Queues) Names() []string { return slices.Clone(q.names) }

// ByPriority returns the queue names by weight, highest first (ties in
// the order QUEUES lists them): the quota engine's lanes.
func (q Queues) ByPriority() []string {
	names := slices.Clone(q.names)
	slices.SortStableFunc(names, func(a, b string) int { return q.weights[b] - q.weights[a] })
	return names
}

// Weights returns asynq's Config.Queues map.
func (q Queues) Weights() map[string]int {
	m := make(map[string]int, len(q.weights))
	for k, v := range q.weights {
		m[k] = v
	}
	return m
}

// String lists the names, for messages.
func (q Queues) String() string { return strings.Join(q.names, ", ") }
