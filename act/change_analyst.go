package act

import (
	"fmt"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// An analyst's verdict change (event.CauseAnalyst) is published by the view when an analyst
// marks an indicator a false positive or unblocks it. It is handled as a de-escalation, with
// two differences: its Action may narrow what it does (unblock lifts the blocks only, and keeps
// the block windows, so that the indicator's next critical sighting within the window does not
// block it again at once), and its records name the analyst (Actor, and the reason in Detail).

// checkAction rejects an action act does not know: a change that asks for something act cannot
// do is dead-lettered rather than taken for a full de-escalation.
func checkAction(c *event.Change) error {
	switch c.Action {
	case "":
		return nil
	case event.ActionFalsePositive, event.ActionUnblock:
		if c.Direction != event.Deescalated {
			return fmt.Errorf("action %q on a change that is not deescalated", c.Action)
		}
		return nil
	}
	return fmt.Errorf("action %q is not %s or %s", c.Action, event.ActionFalsePositive, event.ActionUnblock)
}

// blocksOnly reports whether c lifts the blocks and nothing else.
func blocksOnly(c *event.Change) bool { return c.Action == event.ActionUnblock }

// changeWhy says why c lifts, for the records' details and the tickets' comments.
func changeWhy(c *event.Change, note *ChangeNote) string {
	if c.Cause != event.CauseAnalyst {
		return fmt.Sprintf("the verdict changed from %s to %s", note.From, note.To)
	}
	for _, r := range c.Reasons {
		if r.Source == event.CauseAnalyst && r.Detail != "" {
			return r.Detail
		}
	}
	what := "marked a false positive"
	if blocksOnly(c) {
		what = "unblocked"
	}
	if c.ActorRole == "" {
		return what + " by " + c.Actor
	}
	return fmt.Sprintf("%s by %s (%s)", what, c.Actor, c.ActorRole)
}
