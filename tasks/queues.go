package tasks

import "slices"

// defaultQueues are the queues a worker serves when QUEUES is unset,
// highest priority first. DefaultQueue is one of them.
var defaultQueues = []string{"critical", DefaultQueue, "low"}

// DefaultQueues returns the names of the queues a worker serves when its
// QUEUES setting is unset, highest priority first.
func DefaultQueues() []string { return slices.Clone(defaultQueues) }
