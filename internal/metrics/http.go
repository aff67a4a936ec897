package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: Err returns nil when it holds, else why
// not (a short text, never a secret).
type Check struct {
	Name string
	Err  func() error
}

// Handler serves:
//   - /metrics: what g gathers (the registry given to New);
//   - /healthz: 200 while the process serves HTTP (liveness: the container
//     health check, through `reconciler healthcheck`);
//   - /readyz: 200 when every check holds, else 503; the body lists each
//     check, "ok <name>" or "fail <name>: <why>".
func Handler(g prometheus.Gatherer, ready []Check) http.Handler {
	mux := http.NewServeMux()
	var reg prometheus.Registerer
	if r, ok := g.(prometheus.Registerer); ok {
		reg = r // promhttp_metric_handler_errors_total goes with the rest
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var b strings.Builder
		status := http.StatusOK
		for _, c := range ready {
			if err := c.Err(); err != nil {
				status = http.StatusServiceUnavailable
				fmt.Fprintf(&b, "fail %s: %v\n", c.Name, err)
			} else {
				fmt.Fprintf(&b, "ok %s\n", c.Name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprint(w, b.String())
	})
	return mux
}

// Server is the HTTP server of Handler.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
	log  *slog.Logger
}

// Serve listens on addr and serves h until Shutdown.
func Serve(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
		log:  log,
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			log.Error("metrics server stopped", "err", err)
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address served (with the port picked when addr had port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server, letting scrapes in progress finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}
