"""Past one machine, on Ray: the server as a Ray Serve application, corpora on Ray Data.

Ray is the optional `ray` extra; nothing outside this package imports it."""
