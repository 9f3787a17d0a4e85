package event

import (
	"testing"
	"time"
)

// Regression: appendIPValues once read JSON null items of an IP list as "" (json.Unmarshal of
// null into a string succeeds and leaves it unchanged) and reported "empty IP address".
func TestRegressionECSNullListItemsAreSkipped(t *testing.T) {
	d := NewDecoder(1<<16, 32)
	in, err := d.Decode([]byte(`{"related":{"ip":[null,"8.8.8.8"]}}`), time.Unix(0, 0), "fb")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Warnings) != 0 {
		t.Errorf("warnings for a null list item: %q", in.Warnings)
	}
	_, err = d.Decode([]byte(`{"related":{"ip":[null]}}`), time.Unix(0, 0), "fb")
	if want := "no_indicator: no IP in source.ip, destination.ip, client.ip, server.ip or related.ip"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}
