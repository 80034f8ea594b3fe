package api

import (
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// serveContent answers a GET or HEAD of content with http.ServeContent,
// which handles Range, If-Range, If-None-Match and Content-Length, with
// one correction: net/http answers a suffix range of zero bytes
// ("bytes=-0") with 206, an empty body and the impossible Content-Range
// "bytes N-(N-1)/N", where RFC 9110 (14.1.1) says a suffix range is
// satisfiable only if its length is not zero. Such ranges are dropped, and
// a Range header of nothing else is made one net/http refuses with 416.
// The error is that of finding the content's size for such a header;
// nothing is written then.
func serveContent(w http.ResponseWriter, r *http.Request, content io.ReadSeeker) error {
	if rng, changed := dropEmptySuffixRanges(r.Header.Get("Range")); changed {
		if rng == "" {
			size, err := content.Seek(0, io.SeekEnd)
			if err == nil {
				_, err = content.Seek(0, io.SeekStart)
			}
			if err != nil {
				return err
			}
			rng = "bytes=" + strconv.FormatInt(size, 10) + "-" // starts at the end: unsatisfiable
		}
		r = r.Clone(r.Context())
		r.Header.Set("Range", rng)
	}
	http.ServeContent(w, r, "", time.Time{}, content)
	return nil
}

// dropEmptySuffixRanges removes the "-0" ranges from a bytes Range header
// and reports whether there were any.
func dropEmptySuffixRanges(header string) (string, bool) {
	specs, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return header, false
	}
	var kept []string
	dropped := false
	for spec := range strings.SplitSeq(specs, ",") {
		// Read each range as net/http does, so that whatever it would
		// take for a suffix of length zero ("-0", "- 00", "-+0") goes.
		start, end, ok := strings.Cut(textproto.TrimString(spec), "-")
		end = textproto.TrimString(end)
		if n, err := strconv.ParseInt(end, 10, 64); ok && textproto.TrimString(start) == "" && !strings.HasPrefix(end, "-") && err == nil && n == 0 {
			dropped = true
			continue
		}
		kept = append(kept, spec)
	}
	if !dropped {
		return header, false
	}
	if textproto.TrimString(strings.Join(kept, "")) == "" {
		return "", true
	}
	return "bytes=" + strings.Join(kept, ","), true
}
