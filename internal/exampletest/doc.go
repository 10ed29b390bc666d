// Package exampletest holds what the example programs' tests share: running
// a program's run function in the background and waiting for its output.
package exampletest
