package berth

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// listenFdsStart is the first passed descriptor, as sd_listen_fds(3) has it.
const listenFdsStart = 3

// A ListenFile is a socket passed by `berth run --fd` (or systemd socket
// activation), with its LISTEN_FDNAMES name.
type ListenFile struct {
	*os.File
	Name string
}

var passed struct {
	sync.Once
	files []ListenFile
}

// ListenFDs is the sockets passed to this process by `berth run --fd`
// (or systemd): LISTEN_FDS descriptors from 3 on, named by
// LISTEN_FDNAMES, in the order passed; none when LISTEN_PID is not this
// process. The first call takes them (close-on-exec, and LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES unset, so that child processes do not
// take them for theirs); later calls return the same files.
func ListenFDs() []ListenFile {
	passed.Do(func() {
		pid, err1 := strconv.Atoi(os.Getenv("LISTEN_PID"))
		n, err2 := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
		if err1 != nil || err2 != nil || pid != os.Getpid() || n < 1 {
			return
		}
		for i := 0; i < n; i++ {
			fd := listenFdsStart + i
			syscall.CloseOnExec(fd)
			name := ""
			if i < len(names) {
				name = names[i]
			}
			passed.files = append(passed.files, ListenFile{
				File: os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd)),
				Name: name,
			})
		}
	})
	return passed.files
}

// Listener is the listening socket named name (the first one when name is
// "") that `berth run --fd` passed, as a net.Listener:
//
//	ln, err := berth.Listener("web")   // berth run --fd web -- ./server
//	...
//	http.Serve(ln, handler)
//
// It is an error when none was passed, or when it is not a stream socket
// (a UDP socket is ListenFDs' File, for net.FilePacketConn).
func Listener(name string) (net.Listener, error) {
	for _, f := range ListenFDs() {
		if name != "" && f.Name != name {
			continue
		}
		ln, err := net.FileListener(f.File)
		if err != nil {
			return nil, fmt.Errorf("berth: the socket passed as %q (fd %d) "+
				"is not a listening stream socket: %v", f.Name, f.Fd(), err)
		}
		return ln, nil
	}
	if name == "" {
		return nil, fmt.Errorf("berth: no socket was passed to this process " +
			"(start it with berth run --fd NAME)")
	}
	return nil, fmt.Errorf("berth: no socket named %q was passed to this "+
		"process (start it with berth run --fd %s)", name, name)
}
