package console

import "net/http"

// routeReleases registers the releases board, the release page and its
// forms, and the environments matrix.
func (c *Console) routeReleases(m *http.ServeMux) {}
