// Package fakeclock is a clock a test moves by hand, for code that takes
// its time from a func() time.Time (an Options.Now): the limiter, the
// quota engine, the schedule runner, the simulator.
//
// It is for tests only.
package fakeclock
