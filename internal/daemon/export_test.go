package daemon

import (
	"context"

	"github.com/clawbox/clawbox/internal/store"
)

func openForTest(path string) (*store.DB, error) { return store.Open(context.Background(), path) }
