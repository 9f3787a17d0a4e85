// Package all lists the action sinks compiled into threatpipe. Adding a sink is its own package
// under sinks/ plus one line here.
package all

import (
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/edl"
	"github.com/threatpipe/threatpipe/sinks/jira"
	"github.com/threatpipe/threatpipe/sinks/kafkatopic"
	"github.com/threatpipe/threatpipe/sinks/misp"
	"github.com/threatpipe/threatpipe/sinks/nftables"
	"github.com/threatpipe/threatpipe/sinks/pagerduty"
	"github.com/threatpipe/threatpipe/sinks/servicenow"
	"github.com/threatpipe/threatpipe/sinks/slack"
	"github.com/threatpipe/threatpipe/sinks/thehive"
	"github.com/threatpipe/threatpipe/sinks/threatq"
	"github.com/threatpipe/threatpipe/sinks/webhook"
)

// Registrations returns every sink's registration.
func Registrations() []sinks.Registration {
	return []sinks.Registration{
		edl.Registration,
		nftables.Registration,
		webhook.Registration,
		slack.Registration,
		pagerduty.Registration,
		kafkatopic.Registration,
		jira.Registration,
		servicenow.Registration,
		thehive.Registration,
		threatq.Registration,
		misp.Registration,
	}
}
