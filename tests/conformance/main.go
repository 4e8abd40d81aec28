// Command conformance stands in for the images of the Compose Spec's
// conformance tests (github.com/compose-spec/conformance-tests), which
// tests/conformance_test.go runs against berth: no registry is reachable
// where the tests run, so the test builds this program statically and
// makes it both images, each a single layer FROM scratch.
//
// As the server (no argument) it answers on :8080, over HTTP, what the
// suite asks and receives UDP datagrams on :10001:
//
//	/ping                      {"response":"PONG FROM TARGET"}
//	/ping?address=HOST:PORT/P  the body of http://HOST:PORT/P, or 400 and
//	                           {"response":"Could not reach address: HOST:PORT/P"}
//	/volumefile?filename=F     {"response":"<the content of /volumes/F>"}
//	/udp                       {"response":"<request of the last datagram>"}
//	                           (a datagram is {"request":"..."})
//	/scalechecker?value=V      records V
//	/scalechecker              {"response":"<how many values were recorded>"}
//
// As the client (`client`) it waits a second, then records its HOSTNAME
// with the service `server` once, and exits non-zero if it cannot.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		if err := client(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func client() error {
	time.Sleep(time.Second)
	resp, err := http.Get("http://server:8080/scalechecker?value=" + os.Getenv("HOSTNAME"))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scalechecker: %s", resp.Status)
	}
	return nil
}

type server struct {
	mu      sync.Mutex
	lastUDP string
	values  map[string]bool
}

func serve() error {
	s := &server{values: map[string]bool{}}
	pc, err := net.ListenPacket("udp", ":10001")
	if err != nil {
		return err
	}
	go s.readUDP(pc)
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", s.ping)
	mux.HandleFunc("/volumefile", s.volumeFile)
	mux.HandleFunc("/udp", s.udp)
	mux.HandleFunc("/scalechecker", s.scaleChecker)
	return http.ListenAndServe(":8080", mux)
}

func respond(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"response": s})
}

func (s *server) readUDP(pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var m struct {
			Request string `json:"request"`
		}
		if json.Unmarshal(buf[:n], &m) == nil {
			s.mu.Lock()
			s.lastUDP = m.Request
			s.mu.Unlock()
		}
	}
}

func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("address")
	if addr == "" {
		respond(w, http.StatusOK, "PONG FROM TARGET")
		return
	}
	resp, err := http.Get("http://" + addr)
	if err != nil {
		respond(w, http.StatusBadRequest, "Could not reach address: "+addr)
		return
	}
	defer resp.Body.Close()
	io.Copy(w, resp.Body)
}

func (s *server) volumeFile(w http.ResponseWriter, r *http.Request) {
	b, err := os.ReadFile(filepath.Join("/volumes", filepath.Base(r.URL.Query().Get("filename"))))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	respond(w, http.StatusOK, string(b))
}

func (s *server) udp(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	respond(w, http.StatusOK, s.lastUDP)
}

func (s *server) scaleChecker(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := r.URL.Query().Get("value"); v != "" {
		s.values[v] = true
		return
	}
	respond(w, http.StatusOK, strconv.Itoa(len(s.values)))
}
