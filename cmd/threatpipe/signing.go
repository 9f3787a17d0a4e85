package main

import (
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// signer is the enricher's signer of scored events and changes, or nil when
// THREATPIPE_SIGNING_KEY is not set.
func signer(s *config.Signing) (*sign.Signer, error) {
	if s.Key == "" {
		return nil, nil
	}
	k, err := sign.NewKey(s.Key.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%sSIGNING_KEY: %w", config.Prefix, err)
	}
	return sign.NewSigner(k), nil
}

// signedTopics are the enricher's outputs that act consumes, by the purpose they are signed for.
func signedTopics(k *config.Kafka) sign.Topics {
	return sign.Topics{k.OutputTopic: sign.Scored, k.ChangesTopic: sign.Change}
}

// verifier is act's verifier of scored events and changes (the current key and, while
// rotating, the other one), or nil when THREATPIPE_SIGNING_KEY is not set.
func verifier(s *config.Signing) (*sign.Verifier, error) {
	if s.Key == "" {
		return nil, nil
	}
	var keys []sign.Key
	for name, secret := range map[string]config.Secret{"SIGNING_KEY": s.Key, "SIGNING_PREVIOUS_KEY": s.PreviousKey} {
		if secret == "" {
			continue
		}
		k, err := sign.NewKey(secret.Reveal())
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", config.Prefix, name, err)
		}
		keys = append(keys, k)
	}
	return sign.NewVerifier(keys...), nil
}

// neverBlockList is act's never-block list: the special ranges, THREATPIPE_GATE_OWN_CIDRS and
// THREATPIPE_ACT_NEVER_BLOCK_CIDRS, which the workers and every block sink enforce.
func neverBlockList(cfg *config.Config) *neverblock.List {
	own, _ := cfg.Gate.Own() // validated by config.Load
	never, _ := gate.ParsePrefixes(cfg.Act.NeverBlockCIDRs)
	return neverblock.New(own, never)
}

// refreshAllowed says which input messages may force a lookup (pipeline.RefreshHeader, the
// view's re-enrich): any, without a signing key; only those signed for sign.Refresh with one,
// since whoever can write the input topic could otherwise spend the providers' quota.
func refreshAllowed(s *config.Signing) func(kafka.Message) bool {
	v, _ := verifier(s) // validated by config.Load
	if v == nil {
		return func(kafka.Message) bool { return true }
	}
	return func(m kafka.Message) bool { return v.Verify(sign.Refresh, m) == nil }
}
