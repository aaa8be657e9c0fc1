package console

import (
	"net/http"
	"net/url"
	"strconv"
)

// pageSize is how many rows a list shows; ?limit= asks for 1 to 100.
const pageSizeDefault = 20

// paging reads a list's ?limit= and ?<param>= (the last id of the page
// before).
func paging(r *http.Request, param string) (limit int, after string) {
	limit = pageSizeDefault
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n >= 1 && n <= 100 {
		limit = n
	}
	return limit, r.URL.Query().Get(param)
}

// pager is a list's link to its next page and back to its first.
type pager struct {
	Next  string // URL of the next page; "" on the last one
	First string // URL of the first page; "" on the first one
}

// newPager links a list whose rows end with lastID, kept under param.
func newPager(r *http.Request, param string, hasMore bool, lastID string) pager {
	var p pager
	q := r.URL.Query()
	if hasMore && lastID != "" {
		p.Next = r.URL.Path + query(q, param, lastID)
	}
	if q.Get(param) != "" {
		p.First = r.URL.Path + query(q, param, "")
	}
	return p
}

// flash is a one-line note on a page after a form did its work, named in
// the redirect's query (?done=refund&id=re_…): only known notes are shown,
// so a link cannot put words in the console's mouth.
func flash(q url.Values, notes map[string]string) string {
	msg, ok := notes[q.Get("done")]
	if !ok {
		return ""
	}
	if id := q.Get("id"); id != "" && len(id) <= 64 {
		return msg + " " + id
	}
	return msg
}
