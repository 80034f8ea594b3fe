package console

import "net/http"

// routeAdmin registers the admin pages.
func (c *Console) routeAdmin(m *http.ServeMux) {}
