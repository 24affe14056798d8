package berth

import (
	"errors"
	"fmt"
)

// Error is an error answer from berthd, or a failure to reach it.
type Error struct {
	// Code is the API's error code: "name_taken", "not_found",
	// "bad_token", "pool_exhausted", ... (docs/api.md, Errors);
	// "unreachable" when berthd could not be reached, "http_error" for an
	// answer that is not berthd's.
	Code string
	// Message is berthd's words for people.
	Message string
	// Status is the HTTP status; 0 when berthd did not answer.
	Status int
	// Addr is the address asked.
	Addr string
	// Err is the cause of an "unreachable" error.
	Err error
}

func (e *Error) Error() string {
	if e.Code == "unreachable" || e.Code == "http_error" || e.Code == "" {
		return e.Message
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// Code is the API's error code of err ("not_found", "unreachable", ...),
// or "" when err is nil or not berthd's.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func unreachable(addr, why string, cause error) *Error {
	return &Error{
		Code: "unreachable",
		Message: fmt.Sprintf("cannot reach berthd at %s: %s (is berthd running?)",
			addr, why),
		Addr: addr,
		Err:  cause,
	}
}
