// Package download streams a file to an HTTP client, for the reports the
// API and the console both serve.
package download

import (
	"net/http"
	"time"
)

// writeTimeMax bounds how long streaming one file may take; reports of a
// million rows take far longer than an ordinary request.
const writeTimeMax = 30 * time.Minute

// CSV answers 200 with the CSV that write produces, as an attachment named
// name.csv, streamed as it is written. It is called once the caller knows
// the file exists (errors found before are answered as errors). A failure
// while streaming aborts the connection, so a client never takes a
// truncated file for a whole one; onError is told first.
func CSV(w http.ResponseWriter, name string, write func(w http.ResponseWriter) error, onError func(error)) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeMax))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	w.WriteHeader(http.StatusOK)
	if err := write(w); err != nil {
		onError(err)
		panic(http.ErrAbortHandler)
	}
}
