/*
 * ca.h - the local certificate authority that CONNECT termination mints leaf certificates from.
 *
 * Kept in a state directory: ca.pem (the CA certificate, to install in clients' trust stores), ca.key and
 * leaf.key (ECDSA P-256 private keys, mode 0600, never logged). One leaf key serves every minted leaf, so a
 * mint costs one signature, not a key generation. wolfCrypt stays inside ca.c.
 */
#ifndef DANEPROXY_CA_H
#define DANEPROXY_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CA_VALIDITY_DAYS 825
#define CA_RENEW_DAYS 30          /* renew (with a warning) when fewer days are left */
#define CA_LEAF_VALIDITY_DAYS 7

struct ca;

/* ca_default_dir - /var/lib/daneproxy for root, else $XDG_STATE_HOME/daneproxy or ~/.local/state/daneproxy. */
void ca_default_dir(char *buf, size_t len);

/*
 * ca_open - load the CA of state_dir, creating the directory (0700), keys (0600) and certificate when missing,
 * and renewing a CA that is expired or within CA_RENEW_DAYS of expiry (a warning says so on stderr).
 * create=0 only loads. -1 with err.
 */
int ca_open(const char *state_dir, int create, struct ca **out, char *err, size_t errlen);

/*
 * ca_open_constrained - the same, for a CA limited to the DNS subtrees in permitted (critical nameConstraints,
 * RFC 5280 4.2.1.10): clients then reject any leaf for other names. A CA issued with other constraints (or none)
 * is re-issued with the same key and a warning.
 */
int ca_open_constrained(const char *state_dir, const char *const *permitted, size_t n_permitted, struct ca **out,
			char *err, size_t errlen);
/* ca_constraints - the permitted DNS subtrees, comma-separated ("" when unconstrained). */
void ca_constraints(const struct ca *ca, char *buf, size_t len);
/* ca_permits - 1 when the CA may vouch for name (always, without constraints). */
int ca_permits(const struct ca *ca, const char *name);
void ca_free(struct ca *ca);

/* ca_cert_der / ca_leaf_key_der - DER of the CA certificate and of the shared leaf private key. */
const uint8_t *ca_cert_der(const struct ca *ca, size_t *len);
const uint8_t *ca_leaf_key_der(const struct ca *ca, size_t *len);
/* ca_cert_path - the PEM file clients should trust. */
const char *ca_cert_path(const struct ca *ca);
/* ca_renewed - 1 when ca_open had to create or renew the CA (clients must (re)install it). */
int ca_renewed(const struct ca *ca);

/* ca_mint - a leaf for name (DNS name or IP literal), signed by the CA; *der is malloc'd. -1 with err. */
int ca_mint(struct ca *ca, const char *name, uint8_t **der, size_t *len, char *err, size_t errlen);

#endif
