//go:build !linux

package main

// directFlag is 0 where O_DIRECT does not exist: no reference writes.
const directFlag = 0
