// weft::posix: the blocking POSIX calls under the same names and signatures, for porting code
// written against blocking descriptors. On a fiber they park the fiber instead of the thread
// (a descriptor is registered with the poller on its first call from a fiber: a socket, an
// eventfd, timerfd, signalfd or inotify descriptor, or a character device other than a
// terminal, is switched to non-blocking, and stays so; a pipe,
// FIFO or terminal is left as it is, and weft makes its calls on a second, non-blocking open
// file description of the same pipe or terminal, so stdio, the shell and the other programs of
// a pipeline that share the first never see O_NONBLOCK; docs/io.md); on a plain thread, or for
// a descriptor the poller cannot watch (a regular file: the call then blocks the worker, so
// prefer weft::run_blocking for slow files; also a pipe or terminal that cannot be opened a
// second time through /proc/self/fd), they are the libc call.
// Results are POSIX: -1 with errno set, and errno left as it was when a call succeeds.
// A fiber stays on its worker thread for the duration of each call (a temporary pin), so errno
// is set on the thread the call started on: the idiom `errno = 0; n = recv(...); ... errno`
// reads the right one even where the compiler computed errno's address before the call.
// Invariants:
// - A descriptor that was non-blocking before its first call keeps libc's non-blocking results
//   (EAGAIN, EINPROGRESS) everywhere, until the caller clears O_NONBLOCK (seen at the next
//   EAGAIN: the call then blocks); one that weft switched keeps blocking semantics for every
//   caller: a plain thread waits in poll(2). Setting O_NONBLOCK on a descriptor weft already
//   switched is not seen (the flag is set already): its calls keep blocking.
// - No call raises SIGPIPE on a socket (MSG_NOSIGNAL); a pipe keeps POSIX behaviour (SIGPIPE,
//   or EPIPE if the process ignores or blocks it).
// - A socket's SO_RCVTIMEO (recv, read, accept) and SO_SNDTIMEO (send, write, connect) bound
//   each blocking call as in libc: it fails with EAGAIN (connect: EINPROGRESS) once the
//   timeout passes without progress, on a fiber and on a plain thread alike.
// A descriptor used through weft::posix must be closed with weft::posix::close, which wakes
// fibers still blocked on it (they fail with ECANCELED) and forgets the registration, and
// before the runtime whose fiber first used it is destroyed (a plain ::close of a pipe leaves
// weft's second description open until the number is next used through weft::posix, so the
// other end sees no EOF, EPIPE or SIGPIPE meanwhile). O_NONBLOCK is a flag of the
// open file description: a socket's description shared with another process, or with stdio
// in this one (a program whose stdin or stdout is a socket), is switched for it too.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <cstddef>

namespace weft::posix {

/// Reads up to `count` bytes, as read(2); parks the fiber (blocks a plain thread) until data,
/// EOF or an error (a `count` of 0 returns 0 at once, as read(2) on a socket). Any number of callers may use `fd` at once. -1/ECANCELED if `fd` is closed
/// through weft::posix::close meanwhile.
::ssize_t read(int fd, void* buf, std::size_t count);
/// Writes `count` bytes, as write(2) on a blocking descriptor: parks the fiber while it is full
/// and returns once every byte is written, or with the count written so far when an error,
/// SO_SNDTIMEO or weft::posix::close stops it after some bytes (the error shows on the next
/// call). A descriptor the caller made non-blocking gets libc's short counts. On a socket it
/// is send(MSG_NOSIGNAL): a closed peer gives -1/EPIPE, never SIGPIPE.
::ssize_t write(int fd, const void* buf, std::size_t count);
/// Scatter read, as readv(2); blocks like read().
::ssize_t readv(int fd, const ::iovec* iov, int iovcnt);
/// Gather write, as writev(2); blocks, and writes everything, like write(); on a socket it is
/// sendmsg(MSG_NOSIGNAL).
::ssize_t writev(int fd, const ::iovec* iov, int iovcnt);
/// Receives, as recv(2); parks the fiber until data arrives (MSG_DONTWAIT in `flags` never parks).
/// MSG_WAITALL on a stream socket waits, as libc's, for all `len` bytes (fewer only at EOF, an
/// error or SO_RCVTIMEO after some); with MSG_PEEK added it returns what has arrived.
::ssize_t recv(int fd, void* buf, std::size_t len, int flags);
/// Sends, as send(2) with MSG_NOSIGNAL added; parks the fiber while the socket buffer is full
/// and, like write(), returns once all `len` bytes are sent (MSG_DONTWAIT: one try).
::ssize_t send(int fd, const void* buf, std::size_t len, int flags);
/// Receives a datagram and its source, as recvfrom(2); parks the fiber until one arrives.
::ssize_t recvfrom(int fd, void* buf, std::size_t len, int flags, ::sockaddr* src, ::socklen_t* addrlen);
/// Sends to `dest`, as sendto(2) with MSG_NOSIGNAL added; parks the fiber while the buffer is full.
::ssize_t sendto(int fd, const void* buf, std::size_t len, int flags, const ::sockaddr* dest, ::socklen_t addrlen);
/// Receives into `msg`'s buffers, with its source address and ancillary data (SCM_RIGHTS, ...),
/// as recvmsg(2); parks like recv(). MSG_WAITALL on a stream socket waits for every buffer to
/// fill, as recv(), or, as libc's, returns with the bytes that brought ancillary data.
/// MSG_ERRQUEUE never waits (an empty error queue is EAGAIN, as from libc).
::ssize_t recvmsg(int fd, ::msghdr* msg, int flags);
/// Sends `msg`'s buffers with its ancillary data, as sendmsg(2) with MSG_NOSIGNAL added; parks
/// while the buffer is full and, like write(), returns once every byte is sent. After a short
/// send the rest follows without the ancillary data, which went with the first bytes.
::ssize_t sendmsg(int fd, const ::msghdr* msg, int flags);
/// Accepts a connection, as accept(2); parks the fiber until one is pending. The new descriptor
/// is blocking and not close-on-exec, as POSIX says (it is registered on its first call).
int accept(int fd, ::sockaddr* addr, ::socklen_t* addrlen);
/// As accept(), honouring SOCK_NONBLOCK and SOCK_CLOEXEC in `flags` for the new descriptor.
int accept4(int fd, ::sockaddr* addr, ::socklen_t* addrlen, int flags);
/// Connects, as connect(2): parks the fiber (blocks a plain thread) until the connection is
/// established or fails (-1 with the socket's error, e.g. ECONNREFUSED). A descriptor that was
/// non-blocking before its first call gets EINPROGRESS, as from libc.
int connect(int fd, const ::sockaddr* addr, ::socklen_t addrlen);
/// Waits for any of `fds` (timeout in ms, -1 forever), as poll(2), parking the fiber; it
/// resumes as soon as one is ready. Where no private epoll set can be built for the wait (out
/// of descriptors or epoll watches, an epoll descriptor nested too deep) it rechecks every
/// 1 to 10 ms instead. A descriptor closed through weft::posix::close while a fiber polls it
/// ends the wait: that entry reports POLLNVAL, as a poll begun after the close would. On a
/// plain thread, ::poll (which a close does not end).
int poll(::pollfd* fds, ::nfds_t nfds, int timeout);
/// As poll(), with a timespec timeout (null: forever), as ppoll(2). A non-null `sigmask` is
/// set for the thread during the wait, which a fiber cannot do alone: that call is libc's
/// ppoll and blocks the worker (as on a plain thread).
int ppoll(::pollfd* fds, ::nfds_t nfds, const ::timespec* timeout, const ::sigset_t* sigmask);
/// Waits for descriptors of the three sets as select(2), parking the fiber: on the poll path,
/// with Linux's mapping (readable on data, hang-up or error; writable on space or error;
/// exceptional on urgent data). As on Linux, `*timeout` is left holding the time not slept,
/// a descriptor not open fails with EBADF, `nfds` above FD_SETSIZE counts as FD_SETSIZE,
/// and a tv_usec of a second or more carries over. A select with no descriptors is a sleep.
int select(int nfds, ::fd_set* readfds, ::fd_set* writefds, ::fd_set* exceptfds, ::timeval* timeout);
/// As select(), with a timespec timeout left as it is, as pselect(2). A non-null `sigmask`
/// makes it libc's pselect, blocking the worker (see ppoll()).
int pselect(int nfds, ::fd_set* readfds, ::fd_set* writefds, ::fd_set* exceptfds, const ::timespec* timeout,
            const ::sigset_t* sigmask);
/// Closes `fd`. A registered descriptor: wakes fibers blocked on it (they get -1/ECANCELED),
/// forgets the registration and returns 0; the number itself is closed once the last call in
/// flight on it has left, so it is never reused under a running call (calls begun meanwhile
/// fail with EBADF, as after a close). Otherwise ::close.
/// Either way, fibers in weft::posix::poll on `fd` return (POLLNVAL for it).
int close(int fd);
/// Sleeps `seconds`, parking the fiber (blocking a plain thread); returns 0, or the seconds
/// left if the runtime shut down first.
unsigned int sleep(unsigned int seconds);
/// Sleeps `usec` microseconds, parking the fiber; 0, or -1/EINTR if the runtime shut down first.
int usleep(::useconds_t usec);
/// Sleeps `*req`, parking the fiber; 0 (and `*rem` zeroed), -1/EINVAL for a negative time or
/// tv_nsec outside [0, 1e9), -1/EFAULT for a null `req`, -1/EINTR (`*rem` = the time left) if
/// the runtime shut down first.
int nanosleep(const ::timespec* req, ::timespec* rem);

}  // namespace weft::posix
