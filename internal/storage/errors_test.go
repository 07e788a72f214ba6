package storage

import (
	"errors"
	"fmt"
	"testing"
)

func TestRejectedError(t *testing.T) {
	f := func(items []Rejection, want string) {
		t.Helper()
		err := fmt.Errorf("cannot write: %w", &RejectedError{Items: items})
		if got := err.Error(); got != "cannot write: "+want {
			t.Errorf("Error() = %q; want %q", got, "cannot write: "+want)
		}
		var rej *RejectedError
		if !errors.As(err, &rej) || len(rej.Items) != len(items) {
			t.Errorf("errors.As through a wrap: got %v; want the %d rejections", rej, len(items))
		}
	}
	f([]Rejection{{Index: 3, Reason: "document_parsing_exception: bad"}},
		"the store refused item 3 of the batch permanently: document_parsing_exception: bad")
	f([]Rejection{{Index: 0, Reason: "a"}, {Index: 5, Reason: "b"}, {Index: 9, Reason: "c"}},
		"the store refused item 0 of the batch permanently: a (and 2 more)")
	f(nil, "the store refused no items")
}
