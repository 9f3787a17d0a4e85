package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
)

// CheckGo parses a record with Go's encoding/json into a generic value, as a consumer that does
// not know the schema would: nesting deeper than 10,000, numbers beyond float64 and invalid
// JSON all fail.
func CheckGo(rec []byte) error {
	var v any
	if err := json.Unmarshal(rec, &v); err != nil {
		return fmt.Errorf("encoding/json: %w", err)
	}
	return nil
}

// pythonCheck reads records framed as a 4-byte big-endian length and the bytes, decodes each as
// strict UTF-8 (a byte order mark is an error) and parses it with json.loads; it prints a JSON
// object with the number of records and the failures by index.
const pythonCheck = `import json, struct, sys
data = sys.stdin.buffer.read()
i = n = 0
bad = {}
while i < len(data):
    (size,) = struct.unpack(">I", data[i:i+4])
    rec = data[i+4:i+4+size]
    i += 4 + size
    try:
        json.loads(rec.decode("utf-8"))
    except BaseException as e:
        bad[n] = type(e).__name__ + ": " + str(e)[:300]
    n += 1
json.dump({"records": n, "bad": bad}, sys.stdout)
`

// CheckPython parses every record with python3's json module (json.loads of the record decoded
// as strict UTF-8) and returns the failures by index into recs. An error means python3 could
// not be run.
func CheckPython(ctx context.Context, recs [][]byte) (map[int]string, error) {
	var in bytes.Buffer
	for _, r := range recs {
		in.Write(binary.BigEndian.AppendUint32(nil, uint32(len(r))))
		in.Write(r)
	}
	cmd := exec.CommandContext(ctx, "python3", "-c", pythonCheck)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("python3: %w: %s", err, stderr.Bytes())
	}
	var res struct {
		Records int            `json:"records"`
		Bad     map[int]string `json:"bad"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("python3 answer %q: %w", out, err)
	}
	if res.Records != len(recs) {
		return nil, fmt.Errorf("python3 read %d records, sent %d", res.Records, len(recs))
	}
	return res.Bad, nil
}
