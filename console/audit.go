package console

import "net/http"

// routeAudit registers the audit log pages.
func (c *Console) routeAudit(m *http.ServeMux) {}
