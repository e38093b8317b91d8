package main

import "syscall"

// directFlag opens the reference writes of the disk baseline with O_DIRECT.
const directFlag = syscall.O_DIRECT
