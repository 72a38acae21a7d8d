"""TLS in tcpvs: the settings a service speaks it with (settings), its certificates and the
choice of one by SNI (certs), and a client's ClientHello read without decrypting
(clienthello), for routing by SNI."""
