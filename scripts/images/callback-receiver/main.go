// callback-receiver: the demo/e2e endpoint for KivePolicy callbacks.
//
// It listens on :9376 (or $PORT) and accepts POST /ingest. Each request body must be JSON; it
// is printed to stdout compacted to one line, so `kubectl logs` shows one alert per line.
// GET /healthz answers "ok". Anything else is 404 / 405; a body that is not JSON is 400.
package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
)

const maxBody = 1 << 20

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "9376"
	}
	var mu sync.Mutex // one line per body, never interleaved
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/ingest", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "only POST", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil || len(body) > maxBody {
			http.Error(w, "cannot read body (at most 1 MiB)", http.StatusBadRequest)
			return
		}
		var line bytes.Buffer
		if err := json.Compact(&line, body); err != nil {
			log.Printf("rejected a body that is not JSON from %s: %v", r.RemoteAddr, err)
			http.Error(w, "body is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		line.WriteByte('\n')
		mu.Lock()
		_, err = os.Stdout.Write(line.Bytes())
		mu.Unlock()
		if err != nil {
			http.Error(w, "cannot write", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	log.SetOutput(os.Stderr)
	log.Printf("callback-receiver listening on :%s, POST /ingest", port)
	log.Fatal(http.ListenAndServe(":"+port, mux))
}
