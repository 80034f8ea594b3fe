package console

import "net/http"

// routeCatalog registers the catalogue and the artifact page.
func (c *Console) routeCatalog(m *http.ServeMux) {}
