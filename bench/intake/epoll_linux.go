package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// rawConn is one keep-alive connection driven by raw system calls, out
// of Go's network poller: see sendRaw.
type rawConn struct {
	fd int
	// inflight is the delivery waiting for its answer on this
	// connection, -1 when none; the dispatcher sets it, the reader
	// clears it.
	inflight atomic.Int64
	// buf holds what has been read of the current answer.
	buf []byte
}

// sendRaw sends deliveries[i] at start+sched(i) over conns keep-alive
// connections and fills results, with two OS threads and no goroutine
// handoffs: the dispatcher (this goroutine, locked to its thread) sleeps
// with nanosleep(2) and writes each request itself when it is due; one
// reader, locked to another thread, waits in epoll_wait(2) for answers.
//
// A goroutine per connection fed by a channel cost the generator about
// as much CPU in the Go scheduler (waking goroutines, parking threads,
// polling) as in its reads and writes, on the two cores it shares with
// swarmhook; this way each delivery is one write, one read and its share
// of one epoll_wait.
//
// begin is called once the connections are open and returns the time
// the schedule starts from; measure is called as deliveries[warm], the
// first measured one, is due. A delivery due while every connection
// waits for an answer is sent as soon as one is free, its latency still
// counted from when it was due.
func sendRaw(addr string, conns int, deliveries []delivery, results []result, sched func(int) time.Duration, warm int, begin func() time.Time, measure func()) error {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", addr, err)
	}
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer syscall.Close(epfd)
	cs := make([]*rawConn, conns)
	byFD := map[int]*rawConn{}
	for i := range cs {
		c, err := dialRaw(sa)
		if err != nil {
			return err
		}
		defer syscall.Close(c.fd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
		cs[i], byFD[c.fd] = c, c
	}
	// free holds the connections with no request in flight. Only the
	// dispatcher receives, never blocking, so the reader's sends wake
	// nobody.
	free := make(chan *rawConn, conns)
	for _, c := range cs {
		free <- c
	}
	start := begin()
	answered := make(chan struct{})
	var stop atomic.Bool
	go func() {
		defer close(answered)
		runtime.LockOSThread()
		readRaw(epfd, byFD, results, start, sched, free, len(deliveries), &stop)
	}()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := 0; i < len(deliveries); i++ {
		at := sched(i)
		if wait := at - time.Since(start); wait > 0 {
			sleep(wait)
		}
		if i == warm && warm > 0 {
			measure()
		}
		var c *rawConn
		for waited := time.Now(); c == nil; {
			select {
			case c = <-free:
			default:
				if time.Since(waited) > 30*time.Second {
					stop.Store(true)
					<-answered
					return fmt.Errorf("delivery %d: no connection free for 30 s (swarmhook closed them, or stopped answering)", i)
				}
				sleep(20 * time.Microsecond)
			}
		}
		c.inflight.Store(int64(i))
		// A failed write leaves a broken connection, which the reader
		// finds and counts against the delivery.
		writeAll(c.fd, deliveries[i].request)
	}
	select {
	case <-answered:
	case <-time.After(60 * time.Second):
		stop.Store(true)
		<-answered
		return errors.New("answers still missing 60 s after the last delivery")
	}
	return nil
}

// readRaw reads answers until every delivery has one (or stop is set),
// records each in results and hands its connection back to free.
func readRaw(epfd int, byFD map[int]*rawConn, results []result, start time.Time, sched func(int) time.Duration, free chan<- *rawConn, total int, stop *atomic.Bool) {
	events := make([]syscall.EpollEvent, len(byFD))
	scratch := make([]byte, 16<<10)
	done := 0
	for done < total && !stop.Load() {
		n, err := syscall.EpollWait(epfd, events, 100)
		if err != nil {
			continue // EINTR: the runtime's signals interrupt the wait
		}
		now := time.Since(start)
		for _, ev := range events[:n] {
			c := byFD[int(ev.Fd)]
			m, err := syscall.Read(c.fd, scratch)
			if err == syscall.EINTR || err == syscall.EAGAIN {
				continue
			}
			i := c.inflight.Load()
			if err != nil || m == 0 {
				// swarmhook closed the connection: count the delivery
				// as a transport error and stop using the connection.
				syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
				if i >= 0 {
					results[i] = result{err: fmt.Errorf("read: connection closed (%v)", err), latency: now - sched(int(i))}
					c.inflight.Store(-1)
					done++
				}
				continue
			}
			c.buf = append(c.buf, scratch[:m]...)
			status, body, size, err := parseAnswer(c.buf)
			if size == 0 && err == nil {
				continue // the rest of the answer is on its way
			}
			if err != nil {
				// Out of step with the server: the connection is not
				// used again.
				syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
			}
			if i < 0 {
				c.buf = c.buf[:copy(c.buf, c.buf[size:])]
				continue // an answer nobody asked for
			}
			results[i] = result{status: status, latency: now - sched(int(i)), job: jobID(body), err: err}
			c.buf = c.buf[:copy(c.buf, c.buf[size:])]
			c.inflight.Store(-1)
			done++
			if err == nil {
				free <- c
			}
		}
	}
}

// dialRaw opens a blocking TCP connection outside Go's network poller.
func dialRaw(sa *syscall.SockaddrInet4) (*rawConn, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	for {
		err = syscall.Connect(fd, sa)
		if err != syscall.EINTR {
			break
		}
	}
	if err == nil {
		err = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connect: %w", err)
	}
	c := &rawConn{fd: fd, buf: make([]byte, 0, 4096)}
	c.inflight.Store(-1)
	return c, nil
}

// writeAll writes b to the blocking socket fd.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// sleep waits d with nanosleep(2) on the calling thread; Go's timers
// wake about a millisecond late here.
func sleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}
