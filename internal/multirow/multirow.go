// Package multirow turns a one-row INSERT … VALUES (…) into the same
// statement for many rows. Citus splits a multi-row VALUES insert by shard
// and sends each part to its worker, where an INSERT … SELECT from arrays
// is first collected on the coordinator; on one PostgreSQL the arrays are
// the cheaper form, so callers choose.
package multirow

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxParams is the most parameters a statement can have: the protocol
// numbers them with 16 bits.
const MaxParams = 65535

// A Template is a one-row INSERT … VALUES ($1, …, $n) …, split around its
// row of values.
type Template struct {
	head, tail string
	lits       []string // the row's text between placeholders: len(nums)+1 pieces
	nums       []int    // the row's placeholders, in order of appearance
	n          int      // values a row
}

// Parse splits sql, which must insert one row whose VALUES list holds the
// placeholders $1 to $n (with casts or literals as it likes) and nothing
// after that list may hold a placeholder.
func Parse(sql string, n int) (Template, error) {
	at := strings.LastIndex(strings.ToUpper(sql), "VALUES")
	if at < 0 || strings.IndexByte(sql[at:], '(') < 0 {
		return Template{}, fmt.Errorf("multirow: no VALUES (…) in %s", sql)
	}
	open := at + strings.IndexByte(sql[at:], '(')
	end, depth := -1, 0
	for i := open; i < len(sql) && end < 0; i++ {
		switch sql[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				end = i + 1
			}
		}
	}
	if end < 0 {
		return Template{}, fmt.Errorf("multirow: the row of values is not closed in %s", sql)
	}
	t := Template{head: sql[:open], tail: sql[end:], n: n}
	seen := make(map[int]bool, n)
	row, lit := sql[open:end], 0
	for i := 0; i < len(row); i++ {
		if row[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(row) && row[j] >= '0' && row[j] <= '9' {
			j++
		}
		if j == i+1 {
			continue
		}
		k, _ := strconv.Atoi(row[i+1 : j])
		t.lits, t.nums = append(t.lits, row[lit:i]), append(t.nums, k)
		seen[k] = true
		lit, i = j, j-1
	}
	t.lits = append(t.lits, row[lit:])
	for k := 1; k <= n; k++ {
		if !seen[k] {
			return Template{}, fmt.Errorf("multirow: the row lacks $%d of its %d values in %s", k, n, sql)
		}
	}
	if len(seen) != n || strings.Contains(t.tail, "$") {
		return Template{}, fmt.Errorf("multirow: the placeholders must be the row's $1 to $%d in %s", n, sql)
	}
	return t, nil
}

// MustParse is Parse for templates written in the code.
func MustParse(sql string, n int) Template {
	t, err := Parse(sql, n)
	if err != nil {
		panic(err)
	}
	return t
}

// Width is the values a row takes.
func (t Template) Width() int { return t.n }

// MaxRows is the most rows one statement can take.
func (t Template) MaxRows() int { return MaxParams / t.n }

// SQL returns the statement for rows rows: the row repeated, each copy's
// placeholders moved on by the row's width, so the arguments are the rows'
// values one row after another.
func (t Template) SQL(rows int) string {
	var b strings.Builder
	b.Grow(len(t.head) + len(t.tail) + rows*(len(t.lits)*8+2))
	b.WriteString(t.head)
	var num []byte
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		for i, k := range t.nums {
			b.WriteString(t.lits[i])
			num = strconv.AppendInt(append(num[:0], '$'), int64(k+r*t.n), 10)
			b.Write(num)
		}
		b.WriteString(t.lits[len(t.nums)])
	}
	b.WriteString(t.tail)
	return b.String()
}
