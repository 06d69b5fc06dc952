/*
 * dane.h - the TLSA matching engine (RFC 6698, RFC 7671, RFC 7672).
 *
 * A pure module: no I/O, no DNS, no sockets. It takes the chain a server presented,
 * the TLSA records that DNSSEC vouched for, the reference names and options, and
 * decides whether the peer is authenticated, which record matched at which depth,
 * or exactly why not. The rules are those of shared/DANE.md sections 1-4.
 * wolfSSL types never leave dane.c: callers see opaque chains and stores.
 */
#ifndef DANEPROXY_DANE_H
#define DANEPROXY_DANE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* TLSA usages, selectors and matching types (RFC 6698 section 2.1). */
enum { DANE_USAGE_PKIX_TA = 0, DANE_USAGE_PKIX_EE = 1, DANE_USAGE_DANE_TA = 2, DANE_USAGE_DANE_EE = 3 };
enum { DANE_SELECTOR_CERT = 0, DANE_SELECTOR_SPKI = 1 };
enum { DANE_MTYPE_FULL = 0, DANE_MTYPE_SHA256 = 1, DANE_MTYPE_SHA512 = 2 };

#define DANE_MAX_CHAIN 16        /* certificates accepted from a peer or a file */
#define DANE_MAX_NAMES 8         /* reference identifiers per verification */
#define DANE_MAX_RECORDS 256     /* TLSA records considered per verification */
#define DANE_MAX_EDGES 64        /* candidate issuer signatures checked per verification: path search gives up after */

/* One TLSA record. The engine never keeps pointers to data after dane_verify returns. */
struct dane_tlsa {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	const uint8_t *data;
	size_t len;
};

/* Failure and success reasons: constant strings, compared by pointer, carried unchanged to logs and clients. */
extern const char dane_ok_dane_ee[];          /* DANE-EE record matched the leaf */
extern const char dane_ok_dane_ta[];          /* DANE-TA anchor matched, chain and name valid below it */
extern const char dane_ok_pkix_ta[];          /* PKIX-valid chain and a PKIX-TA record matched */
extern const char dane_ok_pkix_ee[];          /* PKIX-valid chain and a PKIX-EE record matched the leaf */
extern const char dane_ok_pkix[];             /* PKIX-only verification (no TLSA) succeeded */
extern const char dane_err_empty_chain[];     /* the peer presented no certificate */
extern const char dane_err_no_usable[];       /* no usable TLSA record at all */
extern const char dane_err_no_match[];        /* usable records, none matched */
extern const char dane_err_name_mismatch[];   /* anchor or EE matched, but the leaf is not for the reference names */
extern const char dane_err_expired[];         /* a certificate that must be in date has expired */
extern const char dane_err_not_yet_valid[];   /* a certificate that must be in date is not valid yet */
extern const char dane_err_not_ca[];          /* an issuer below the anchor is not a CA / path length exceeded */
extern const char dane_err_bad_usage[];       /* key usage or extended key usage forbids TLS server use */
extern const char dane_err_bad_signature[];   /* a certificate's signature does not verify under its issuer */
extern const char dane_err_pkix_untrusted[];  /* no path to the PKIX trust store */
extern const char dane_err_pkix_no_store[];   /* PKIX usages present but no trust store was given */
extern const char dane_err_pkix_no_match[];   /* chain PKIX-valid, but no PKIX-TA/EE record matched */
extern const char dane_err_internal[];        /* out of memory or library failure */

/* The verdict. */
struct dane_result {
	int authenticated;     /* 1 or 0 */
	const char *reason;    /* one of the constants above */
	int depth;             /* depth of the matching certificate (0 = leaf), -1 if none */
	int record;            /* index into the records array of the record that matched, -1 if none */
	int usable_records;    /* records that passed the usability rules of DANE.md section 1 */
	int unusable_records;  /* records ignored as unusable */
	int chain_len;         /* length of the chain that was built (leaf .. anchor), 0 if none */
	int issuers_tried;     /* candidate issuer signatures checked while building paths (at most DANE_MAX_EDGES) */
	char detail[256];      /* human explanation: which certificate, which date, which name */
};

struct dane_store;

/* Options. Zero-initialised means: DANE-EE without name checks, HTTPS profile, SHA-512 over SHA-256, now. */
struct dane_options {
	int ee_namecheck;                 /* also check names on DANE-EE matches (OpenSSL's default) */
	int smtp;                         /* RFC 7672 profile: usages 0 and 1 are unusable */
	uint8_t digest_order[4];          /* matching types strongest first, 0-terminated; {0} = {2, 1} */
	const struct dane_store *store;   /* PKIX trust store for usages 0/1 and PKIX-only checks, may be NULL */
	time_t now;                       /* verification time; 0 = time(NULL) */
};

/* A presented chain: DER certificates, leaf first. */
struct dane_chain;

/* dane_chain_new - an empty chain, or NULL when out of memory. */
struct dane_chain *dane_chain_new(void);
/* dane_chain_free - free a chain and every certificate in it (NULL is fine). */
void dane_chain_free(struct dane_chain *chain);
/* dane_chain_add_der - append one DER certificate; -1 with a message in err when it does not parse or the chain is full. */
int dane_chain_add_der(struct dane_chain *chain, const uint8_t *der, size_t len, char *err, size_t errlen);
/* dane_chain_load_pem - append every CERTIFICATE block of a PEM buffer (or one DER certificate); -1 with a message on any error. */
int dane_chain_load_pem(struct dane_chain *chain, const char *buf, size_t len, char *err, size_t errlen);
/* dane_chain_len - number of certificates. */
size_t dane_chain_len(const struct dane_chain *chain);
/* dane_chain_der - the DER of certificate i. */
const uint8_t *dane_chain_der(const struct dane_chain *chain, size_t i, size_t *len);

/* dane_store_new - an empty PKIX trust store. */
struct dane_store *dane_store_new(void);
/* dane_store_free - free a store (NULL is fine). */
void dane_store_free(struct dane_store *store);
/* dane_store_add_pem - add every certificate of a PEM buffer as a trust anchor; returns the count or -1 with err. */
int dane_store_add_pem(struct dane_store *store, const char *buf, size_t len, char *err, size_t errlen);
/* dane_store_count - number of anchors. */
size_t dane_store_count(const struct dane_store *store);

/*
 * dane_verify - decide whether chain is authenticated by records for the reference names.
 * names: reference identifiers (TLSA base domain, then the original host name); n_names may be 0 only
 * when no name check can be reached (the result is then a name mismatch). Returns 0 when a verdict was
 * reached (see result->authenticated), -1 on internal failure (result->reason = dane_err_internal).
 */
int dane_verify(const struct dane_chain *chain, const struct dane_tlsa *records, size_t n_records,
		const char *const *names, size_t n_names, const struct dane_options *opts, struct dane_result *result);

/* dane_verify_pkix - plain PKIX verification against opts->store with name checks (policy fallback, no TLSA). */
int dane_verify_pkix(const struct dane_chain *chain, const char *const *names, size_t n_names,
		     const struct dane_options *opts, struct dane_result *result);

/* dane_record_usable - 1 when a record is usable under opts (DANE.md section 1), else 0 with a reason in why. */
int dane_record_usable(const struct dane_tlsa *rec, const struct dane_options *opts, const char **why);

/* dane_chain_spki - the DER SubjectPublicKeyInfo of certificate i (pointer into chain-owned memory). */
const uint8_t *dane_chain_spki(const struct dane_chain *chain, size_t i, size_t *len);

/* dane_chain_dns_name - the first DNS subjectAltName of certificate i (else its CN) into buf; -1 when it has none. */
int dane_chain_dns_name(const struct dane_chain *chain, size_t i, char *buf, size_t len);
/* dane_chain_describe - subject, issuer and validity (UTC) of certificate i, for explanations. */
void dane_chain_describe(const struct dane_chain *chain, size_t i, char *subject, size_t subject_len, char *issuer,
			 size_t issuer_len, time_t *not_before, time_t *not_after);

/*
 * dane_printable - untrusted text (a certificate's subject, a host name) as printable UTF-8 for terminals, logs and
 * JSON: control characters (C0, DEL, C1) and bytes that are not well-formed UTF-8 become "\xHH". Writes at most
 * outlen bytes with the NUL, never cutting an escape or a character in two; returns out. Every subject or name the
 * engine puts into an explanation has been through it.
 */
char *dane_printable(const char *in, size_t len, char *out, size_t outlen);

/* dane_name_match - RFC 6125 matching of one presented DNS name (maybe a wildcard) against a reference name. */
int dane_name_match(const char *presented, size_t presented_len, const char *reference);

#endif
