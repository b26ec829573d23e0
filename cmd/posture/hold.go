package main

import (
	"github.com/spf13/pflag"

	"github.com/nhsx/posture/scanner/store"
)

const holdUsage = "runs a change must hold before it is announced: a failure before it is new or regressed, a pass before it is fixed (unknown neither counts nor breaks the streak)"

// holdFlag registers --hold.
func holdFlag(fl *pflag.FlagSet, p *int, def int, extra string) {
	fl.IntVar(p, "hold", def, holdUsage+extra)
}

// setHold gives the store the hold; 0 leaves it as it is (reeval: each
// run's own).
func setHold(st *store.Store, n int) error {
	if n == 0 {
		return nil
	}
	if err := st.SetHold(n); err != nil {
		return &usageError{err}
	}
	return nil
}

func checkHold(n int, zeroOK bool) error {
	if n < 0 || (n == 0 && !zeroOK) {
		return usagef("--hold %d: want at least 1 run", n)
	}
	return nil
}
