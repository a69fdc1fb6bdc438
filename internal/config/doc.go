// Package config loads the worker's and the producer's configuration from
// the environment (and flags that mirror it) once, at the edge, and
// validates it with messages that name the variable that is wrong and say
// what it should be.
//
// Nothing else in refreshq reads the environment.
package config
