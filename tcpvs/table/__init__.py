"""The service table: services, real servers, rules and settings (model, settings), every
tcpvsadm operation on them (operations), the config grammar (config) and the -L listing
(listing). No I/O here, but for resolving host names (addr)."""
