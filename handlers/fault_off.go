//go:build !faultinject

package handlers

// fault is a crash point for the fault-injection build (see
// fault_faultinject.go); in a normal build it does nothing.
func fault(string) {}
