package table

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// RESTPrefix is where the admin listener serves the REST catalog: an
// engine's catalog URI is http://<admin address>/iceberg.
const RESTPrefix = "/iceberg"

// RESTHandler serves the read side of the Iceberg REST catalog protocol
// (the OpenAPI spec of apache/iceberg, open-api/rest-catalog-open-api.yaml)
// over the catalog: the config, the one namespace, its tables (tables
// lists the topics that have one) and loading a table. Engines then read
// the metadata and files from the object store themselves. Writes are
// refused: the broker is the only committer of its tables.
func (c *Catalog) RESTHandler(tables func() []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"defaults": map[string]string{}, "overrides": map[string]string{}})
	})
	mux.HandleFunc("GET /v1/namespaces", func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Query().Get("parent"); p != "" {
			writeJSON(w, http.StatusOK, map[string]any{"namespaces": [][]string{}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"namespaces": [][]string{{Namespace}}})
	})
	namespace := func(w http.ResponseWriter, r *http.Request) bool {
		if r.PathValue("ns") != Namespace {
			restError(w, http.StatusNotFound, "NoSuchNamespaceException", "namespace "+r.PathValue("ns")+" does not exist; Vigil's tables are in "+Namespace)
			return false
		}
		return true
	}
	mux.HandleFunc("GET /v1/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		if namespace(w, r) {
			writeJSON(w, http.StatusOK, map[string]any{"namespace": []string{Namespace}, "properties": map[string]string{}})
		}
	})
	mux.HandleFunc("HEAD /v1/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		if namespace(w, r) {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("GET /v1/namespaces/{ns}/tables", func(w http.ResponseWriter, r *http.Request) {
		if !namespace(w, r) {
			return
		}
		type ident struct {
			Namespace []string `json:"namespace"`
			Name      string   `json:"name"`
		}
		ids := []ident{}
		for _, t := range tables() {
			if v, err := c.newest(r.Context(), Ident(t)); err == nil && v > 0 {
				ids = append(ids, ident{[]string{Namespace}, t})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"identifiers": ids})
	})
	load := func(w http.ResponseWriter, r *http.Request, head bool) {
		if !namespace(w, r) {
			return
		}
		md, loc, _, err := c.load(r.Context(), Ident(r.PathValue("table")))
		switch {
		case errors.Is(err, ErrNoTable):
			restError(w, http.StatusNotFound, "NoSuchTableException", err.Error())
		case err != nil:
			restError(w, http.StatusInternalServerError, "ServiceFailureException", err.Error())
		case head:
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"metadata-location": loc, "metadata": md, "config": map[string]string{}})
		}
	}
	mux.HandleFunc("GET /v1/namespaces/{ns}/tables/{table}", func(w http.ResponseWriter, r *http.Request) { load(w, r, false) })
	mux.HandleFunc("HEAD /v1/namespaces/{ns}/tables/{table}", func(w http.ResponseWriter, r *http.Request) { load(w, r, true) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		restError(w, http.StatusNotImplemented, "NotImplementedException",
			"Vigil's REST catalog is read-only: "+r.Method+" "+r.URL.Path+" is not served; tables are created and committed by the broker (vigil.table.enabled)")
	})
	return http.StripPrefix(RESTPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Engines may name the catalog's warehouse as a path prefix.
		r.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, "/")
		mux.ServeHTTP(w, r)
	}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// restError answers in the protocol's ErrorModel.
func restError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": status}})
}
