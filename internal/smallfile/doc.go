// Package smallfile reads a file that should be small (a secret, a CA
// bundle, a schedule) with a bound, so that a path naming something else
// (a log, a device) cannot fill memory.
//
// It is not for files whose size is not known to be small.
package smallfile
