package api

import "github.com/go-chi/chi/v5"

// webhookRoutes serves webhook endpoints and the event log to app keys.
func (s *Server) webhookRoutes(r chi.Router) {}
