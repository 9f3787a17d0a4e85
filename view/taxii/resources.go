package taxii

import (
	"net/http"

	"go.uber.org/zap"
)

// maxContentLength is the API root's max_content_length: the collections are read-only, so the
// server accepts no content at all; TAXII requires a positive number, hence the smallest.
const maxContentLength = 1

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"title":       "threatpipe TAXII 2.1",
		"description": "Read-only TAXII 2.1 server of the indicators threatpipe scored.",
		"default":     APIRootPath,
		"api_roots":   []string{APIRootPath},
	})
}

func (s *Server) apiRoot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"title":              "threatpipe indicators",
		"description":        "STIX 2.1 indicators, sightings and notes of the addresses threatpipe scored, all of them and by severity.",
		"versions":           []string{MediaTAXII},
		"max_content_length": maxContentLength,
	})
}

// collectionResource is TAXII's collection resource of c.
func collectionResource(c Collection) map[string]any {
	return map[string]any{
		"id": c.ID, "title": c.Title, "description": c.Description, "alias": c.Alias,
		"can_read": true, "can_write": false, "media_types": []string{MediaSTIX},
	}
}

func (s *Server) collections(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	out := []map[string]any{}
	for _, c := range Collections() {
		if p.may(c) {
			out = append(out, collectionResource(c))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"collections": out})
}

// lookup resolves the {id} path value (an id or an alias), answering 404 or 403 itself.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (Collection, bool) {
	c, ok := s.byKey[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "Collection not found", "No collection has this id or alias.")
		return Collection{}, false
	}
	if !principalOf(r.Context()).may(c) {
		writeError(w, http.StatusForbidden, "Forbidden", "These credentials may not read this collection.")
		return Collection{}, false
	}
	return c, true
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.lookup(w, r); ok {
		writeJSON(w, http.StatusOK, collectionResource(c))
	}
}

// page runs the feed for a request, answering errors itself.
func (s *Server) page(w http.ResponseWriter, r *http.Request) (*Page, bool) {
	c, ok := s.lookup(w, r)
	if !ok {
		return nil, false
	}
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Bad request", err.Error())
		return nil, false
	}
	if obj := r.PathValue("object"); obj != "" { // GET an object: its latest version
		q.IDs = map[string]bool{obj: true}
	}
	p, err := s.feed.Page(r.Context(), c, q)
	if err != nil {
		s.log.Warn("taxii page failed", zap.String("collection", c.Alias), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "Unavailable", "The view's store could not be read; retry later.")
		return nil, false
	}
	if obj := r.PathValue("object"); obj != "" && len(p.Items) == 0 && q.Next == nil {
		writeError(w, http.StatusNotFound, "Object not found", "No object has this id in this collection.")
		return nil, false
	}
	if n := len(p.Items); n > 0 {
		w.Header().Set("X-TAXII-Date-Added-First", Timestamp(p.Items[0].Added))
		w.Header().Set("X-TAXII-Date-Added-Last", Timestamp(p.Items[n-1].Added))
	}
	return p, true
}

// envelope is TAXII's envelope resource.
type envelope struct {
	More    bool     `json:"more"`
	Next    string   `json:"next,omitempty"`
	Objects []Object `json:"objects,omitempty"`
}

func (s *Server) objects(w http.ResponseWriter, r *http.Request) {
	p, ok := s.page(w, r)
	if !ok {
		return
	}
	env := envelope{More: p.More, Objects: make([]Object, 0, len(p.Items))}
	if p.More {
		env.Next = p.Next.String()
	}
	for _, it := range p.Items {
		env.Objects = append(env.Objects, it.Object)
	}
	writeJSON(w, http.StatusOK, env)
}

// manifestRecord is one entry of TAXII's manifest resource.
type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

type manifestResource struct {
	More    bool             `json:"more"`
	Next    string           `json:"next,omitempty"`
	Objects []manifestRecord `json:"objects,omitempty"`
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	p, ok := s.page(w, r)
	if !ok {
		return
	}
	m := manifestResource{More: p.More, Objects: make([]manifestRecord, 0, len(p.Items))}
	if p.More {
		m.Next = p.Next.String()
	}
	for _, it := range p.Items {
		m.Objects = append(m.Objects, manifestRecord{ID: it.Object.StixID(), DateAdded: Timestamp(it.Added),
			Version: it.Object.Version(), MediaType: MediaSTIX})
	}
	writeJSON(w, http.StatusOK, m)
}
