//go:build !linux

package main

import (
	"errors"
	"time"
)

// sendRaw needs Linux's epoll; elsewhere run with -raw=false.
func sendRaw(addr string, conns int, deliveries []delivery, results []result, sched func(int) time.Duration, warm int, begin func() time.Time, measure func()) error {
	return errors.New("-raw needs Linux; run with -raw=false")
}

// sleep waits d.
func sleep(d time.Duration) { time.Sleep(d) }
