package misp

// The request bodies of MISP's REST API this package sends. Shapes are checked against MISP's
// OpenAPI spec (MISP/MISP app/webroot/doc/openapi.yaml, commit bb0909a3) and PyMISP
// (MISP/PyMISP pymisp/api.py, commit 99a1c797); each type names its source. MISP takes ids,
// levels and timestamps as strings or numbers; this package sends the OpenAPI string form,
// except where MISP's code insists on a JSON number (sightings restSearch's id).

// API paths.
const (
	EventsAddPath           = "/events/add"             // OpenAPI addEvent; PyMISP add_event
	EventsIndexPath         = "/events/index"           // OpenAPI searchEvents; PyMISP search_index
	AttributesAddPath       = "/attributes/add/"        // + event id: OpenAPI addAttribute; PyMISP add_attribute
	AttributesEditPath      = "/attributes/edit/"       // + attribute id: OpenAPI editAttribute (PUT there; POST as PyMISP's update_attribute sends, which MISP takes too)
	AttributesSearchPath    = "/attributes/restSearch"  // OpenAPI restSearchAttributes; PyMISP search(controller="attributes")
	TagsAttachPath          = "/tags/attachTagToObject" // PyMISP tag; TagsController::attachTagToObject (not in the OpenAPI spec)
	TagsRemovePath          = "/tags/removeTagFromObject"
	SightingsAddPath        = "/sightings/add"                  // OpenAPI addSightingByValue; PyMISP add_sighting; SightingsController::add
	SightingsSearchPath     = "/sightings/restSearch/attribute" // PyMISP search_sightings(context="attribute"); Sighting::restSearch
	returnFormatJSON        = "json"
	sightingTypeSighting    = "0" // Sighting::TYPE: 0 sighting, 1 false positive, 2 expiration
	categoryNetworkActivity = "Network activity"
)

// newEvent is the body of POST /events/add: OpenAPI EventNoId, flat as PyMISP's
// MISPEvent.to_dict sends it (EventsController::add also takes it wrapped in "Event").
type newEvent struct {
	Info          string `json:"info"`
	Date          string `json:"date"`
	Distribution  string `json:"distribution"`
	ThreatLevelID string `json:"threat_level_id"`
	Analysis      string `json:"analysis"`
}

// eventIndexQuery is the body of POST /events/index: OpenAPI SearchEventRequest. eventinfo
// matches the info as a substring (SQL LIKE), so the answer is filtered for the exact info.
type eventIndexQuery struct {
	EventInfo string `json:"eventinfo"`
	Minimal   bool   `json:"minimal,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	Page      int    `json:"page,omitempty"`
}

// AttributeQuery is the body of POST /attributes/restSearch: OpenAPI
// AttributeRestSearchFilter, with the parameter names PyMISP's search sends (type for
// type_attribute, eventid, timestamp: Attribute.timestamp >= it, MispAttribute::
// setTimestampConditions). Order takes MISP's "Model.field [ASC|DESC]" rules
// (AppModel::findOrder); page counts from 1.
type AttributeQuery struct {
	ReturnFormat string   `json:"returnFormat"`
	Value        string   `json:"value,omitempty"`
	Type         []string `json:"type,omitempty"`
	EventID      string   `json:"eventid,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	Timestamp    int64    `json:"timestamp,omitempty"`
	Order        []string `json:"order,omitempty"`
	Page         int      `json:"page,omitempty"`
	Limit        int      `json:"limit,omitempty"`
}

// newAttribute is the body of POST /attributes/add/{eventId}: OpenAPI AttributeNoId.
// Distribution is left to MISP's default (5, inherit the event's).
type newAttribute struct {
	Type     string `json:"type"`
	Category string `json:"category"`
	Value    string `json:"value"`
	ToIDS    bool   `json:"to_ids"`
	Comment  string `json:"comment"`
}

// attributeEdit is the body of POST /attributes/edit/{attributeId}: the fields changed,
// OpenAPI Attribute; MISP keeps the others and sets the timestamp to now.
type attributeEdit struct {
	ToIDS   bool   `json:"to_ids"`
	Comment string `json:"comment"`
}

// tagRequest is the body of POST /tags/attachTagToObject (PyMISP tag: uuid, tag, local) and
// of /tags/removeTagFromObject (PyMISP untag: uuid, tag).
type tagRequest struct {
	UUID  string `json:"uuid"`
	Tag   string `json:"tag"`
	Local *bool  `json:"local,omitempty"`
}

// newSighting is the body of POST /sightings/add for one attribute (SightingsController::add
// reads uuid, type, source and timestamp; OpenAPI Sighting).
type newSighting struct {
	UUID      string `json:"uuid"`
	Type      string `json:"type"`
	Source    string `json:"source"`
	Timestamp int64  `json:"timestamp"`
}

// sightingQuery is the body of POST /sightings/restSearch/attribute (PyMISP search_sightings;
// Sighting::restSearch wants id as a JSON integer and from/to as timestamps).
type sightingQuery struct {
	ReturnFormat string `json:"returnFormat"`
	ID           int64  `json:"id"`
	From         int64  `json:"from"`
	To           int64  `json:"to"`
	Source       string `json:"source"`
}
