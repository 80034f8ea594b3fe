package console

import "net/http"

// routeInbox registers "Waiting for me".
func (c *Console) routeInbox(m *http.ServeMux) {}
